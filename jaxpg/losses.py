"""The surrogate objectives and masked statistics every update kind shares.

All functions take time-major ``[T, B]`` (or flat ``[N]``) float32 arrays with a
0/1 ``mask`` of the same shape; masked entries (steps after an episode's end,
padding) never enter a sum or a mean. :mod:`jaxpg.estimators` re-exports them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def masked_mean(x: Array, mask: Array) -> Array:
    """Mean of ``x`` over the entries where ``mask`` is 1: Σ x·m / max(Σ m, 1).

    Args:
      x: values, any shape.
      mask: float 0/1 weights of ``x``'s shape.

    Returns:
      A float32 scalar (0 when the mask is empty).

    Example:
      >>> float(masked_mean(jnp.array([1.0, 2.0, 9.0]), jnp.array([1.0, 1.0, 0.0])))
      1.5
    """
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def normalize(psi: Array, mask: Array, eps: float = 1e-8) -> Array:
    """(Ψ − mean) / (std + eps) over the masked batch.

    This subtracts a same-batch mean baseline (bias O(1/N)) and rescales by a
    batch statistic; it changes the estimator and is off for the vanilla ones.

    Args:
      psi: weights Ψ, any shape (``[T, B]``).
      mask: 0/1 of the same shape; masked entries do not enter the statistics.
      eps: added to the standard deviation.

    Returns:
      The normalised weights, ``psi``'s shape.
    """
    mean = masked_mean(psi, mask)
    var = masked_mean((psi - mean) ** 2, mask)
    return (psi - mean) / (jnp.sqrt(var) + eps)


def pg_surrogate(log_prob: Array, psi: Array, mask: Array, normalizer: Array | float) -> Array:
    """Σ mask·log π(a|s)·stop_gradient(Ψ) / normalizer; its gradient is the estimate.

    Args:
      log_prob: log π_θ(a_t|s_t), ``[T, B]`` (or flat ``[N]``).
      psi: the weights Ψ_t, same shape (not differentiated).
      mask: 0/1, same shape.
      normalizer: N trajectories (complete episodes: the unbiased (1/N) Σ_i Σ_t)
        or the number of unmasked steps (segments).

    Returns:
      The scalar surrogate.
    """
    return jnp.sum(log_prob * jax.lax.stop_gradient(psi) * mask) / normalizer


def ppo_surrogate(
    log_prob: Array, old_log_prob: Array, adv: Array, mask: Array, clip_eps: Array | float
) -> tuple[Array, Array, Array]:
    """PPO's clipped objective E[min(ρ Â, clip(ρ, 1 ± ε) Â)], ρ = π/π_old.

    Args:
      log_prob: log π_θ(a_t|s_t), ``[N]`` float32 (or any shape).
      old_log_prob: log π_old(a_t|s_t) of the rollout, same shape.
      adv: advantages Â_t, same shape (not differentiated).
      mask: 0/1 float32, same shape; masked entries do not count.
      clip_eps: ε, a float or a traced scalar.

    Returns:
      ``(objective, approx_kl, clip_fraction)``, float32 scalars (masked means);
      approx KL is the low-variance estimator E[(ρ − 1) − log ρ], and it and the
      clip fraction carry no gradient.
    """
    adv = jax.lax.stop_gradient(adv)
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    obj = masked_mean(jnp.minimum(ratio * adv, clipped * adv), mask)
    kl = masked_mean(jax.lax.stop_gradient((ratio - 1.0) - log_ratio), mask)
    frac = masked_mean(
        jax.lax.stop_gradient((jnp.abs(ratio - 1.0) > clip_eps).astype(adv.dtype)), mask
    )
    return obj, kl, frac


def value_loss(value: Array, target: Array, mask: Array) -> Array:
    """½ E[(V_φ(s) − target)²] over the masked steps (target is not differentiated).

    Args:
      value: V_φ(s_t), ``[T, B]`` or ``[N]``.
      target: the regression target, same shape.
      mask: 0/1, same shape.

    Returns:
      The scalar loss.
    """
    return 0.5 * masked_mean((value - jax.lax.stop_gradient(target)) ** 2, mask)


def clipped_value_loss(
    value: Array, old_value: Array, target: Array, mask: Array, clip_eps: Array | float
) -> Array:
    """PPO's clipped value loss ½ E[max((V − R)², (V_old + clip(V − V_old, ±ε) − R)²)].

    The pessimistic (larger) of the plain and the clipped squared errors, so the
    gradient vanishes where V has moved more than ε from the rollout's V_old in
    the direction that helps the fit. With ε = ``inf`` it equals
    :func:`value_loss` exactly (the clipped value is V itself).

    Args:
      value: V_φ(s_t), ``[T, B]`` or ``[N]``.
      old_value: V_old(s_t), the critic's values at rollout time, same shape
        (not differentiated).
      target: the regression target R, same shape (not differentiated).
      mask: 0/1, same shape.
      clip_eps: ε > 0, a float or a traced scalar.

    Returns:
      The scalar loss.

    Example:
      >>> v, old, r, m = jnp.array([2.0]), jnp.array([0.0]), jnp.array([3.0]), jnp.ones(1)
      >>> float(clipped_value_loss(v, old, r, m, 0.5))  # ½·max((2−3)², (0.5−3)²) = ½·6.25
      3.125
    """
    target = jax.lax.stop_gradient(target)
    old_value = jax.lax.stop_gradient(old_value)
    moved = value - old_value
    clipped = jnp.where(
        jnp.abs(moved) > clip_eps, old_value + jnp.clip(moved, -clip_eps, clip_eps), value
    )
    return 0.5 * masked_mean(jnp.maximum((value - target) ** 2, (clipped - target) ** 2), mask)


def ratio_surrogate(log_prob: Array, old_log_prob: Array, adv: Array, mask: Array) -> Array:
    """The trust-region surrogate E[exp(log π_θ − log π_old) Â] over the masked steps.

    Its gradient at θ = θ_old is the masked-mean policy gradient E[∇log π · Â].

    Args:
      log_prob: log π_θ(a_t|s_t), any shape.
      old_log_prob: log π_old(a_t|s_t), same shape.
      adv: Â_t, same shape (not differentiated).
      mask: 0/1, same shape.

    Returns:
      The scalar surrogate.
    """
    ratio = jnp.exp(log_prob - old_log_prob)
    return masked_mean(ratio * jax.lax.stop_gradient(adv), mask)
