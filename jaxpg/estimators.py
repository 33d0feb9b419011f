"""Policy-gradient estimators as surrogate objectives whose gradient is the estimate.

Every estimator maximises a surrogate L(θ) with ∇L = Σ_t ∇log π_θ(a_t|s_t) Ψ_t
(averaged over the batch); they differ only in the weight Ψ_t:

=============== ============================== ==================================
name            Ψ_t                            critic target
=============== ============================== ==================================
reinforce       R(τ) = Σ_k γ^k r_k (episode)   —
reward_to_go    G_t = Σ_{k≥t} γ^{k−t} r_k      —
baseline        G_t − V_φ(s_t)                 G_t (bootstrapped at cuts)
vpg             GAE(γ, λ)                      Â_t + V_φ(s_t) (λ-return)
ppo             clipped-ratio surrogate, GAE   Â_t + V_φ(s_t)
=============== ============================== ==================================

Weights are computed from a rollout with the *pre-update* critic, so the
baseline never depends on the batch it is applied to through a refit, and are
wrapped in ``stop_gradient`` here. Normalisation of the loss:

* ``per_trajectory=True`` (complete episodes): (1/N) Σ_i Σ_t — the unbiased
  estimate of ∇J for N trajectories.
* ``per_trajectory=False`` (fixed segments): the mean over all T·B steps, the
  usual per-timestep normalisation of segment-based trainers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxpg import returns

Array = jax.Array


class Weights(NamedTuple):
    psi: Array  # Ψ_t, [T, B]
    value_target: Array | None  # critic regression target, [T, B] or None


def _reinforce(
    reward: Array, values: Array, next_values: Array, terminated: Array, truncated: Array,
    *, gamma: float | Array, lam: float | Array,
) -> Weights:  # fmt: skip
    del values, next_values, lam
    return Weights(returns.episode_returns(reward, terminated, truncated, gamma=gamma), None)


def _reward_to_go(
    reward: Array, values: Array, next_values: Array, terminated: Array, truncated: Array,
    *, gamma: float | Array, lam: float | Array,
) -> Weights:  # fmt: skip
    del values, next_values, lam
    zeros = jnp.zeros_like(reward)
    return Weights(returns.reward_to_go(reward, zeros, terminated, truncated, gamma=gamma), None)


def _baseline(
    reward: Array, values: Array, next_values: Array, terminated: Array, truncated: Array,
    *, gamma: float | Array, lam: float | Array,
) -> Weights:  # fmt: skip
    del lam
    g = returns.reward_to_go(reward, next_values, terminated, truncated, gamma=gamma)
    return Weights(g - values, g)


def _gae(
    reward: Array, values: Array, next_values: Array, terminated: Array, truncated: Array,
    *, gamma: float | Array, lam: float | Array,
) -> Weights:  # fmt: skip
    adv = returns.gae(reward, values, next_values, terminated, truncated, gamma=gamma, lam=lam)
    return Weights(adv, adv + values)


class EstimatorInfo(NamedTuple):
    """What an estimator is and what the trainer must give it.

    Attributes:
      name: the ``Config.estimator`` value.
      weights: ``(reward, values, next_values, terminated, truncated, *, gamma, lam)
        -> Weights``, all ``[T, ...]``.
      critic: trains a value network and uses it in Ψ (segments can be bootstrapped).
      episodic: needs complete episodes (no critic to bootstrap a cut episode).
      update: ``"step"`` (one full-batch gradient step per rollout, on-policy) or
        ``"epochs"`` (PPO's ``num_epochs × num_minibatches`` clipped-ratio steps).
      normalize: advantage normalisation is on by default.
    """

    name: str
    weights: Callable[..., Weights]
    critic: bool
    episodic: bool
    update: str
    normalize: bool


#: The one table of estimators: everything else (Config validation, the update,
#: the CLI's choices, the docs' tests) reads it.
REGISTRY: dict[str, EstimatorInfo] = {
    e.name: e
    for e in (
        EstimatorInfo("reinforce", _reinforce, False, True, "step", False),
        EstimatorInfo("reward_to_go", _reward_to_go, False, True, "step", False),
        EstimatorInfo("baseline", _baseline, True, False, "step", False),
        EstimatorInfo("vpg", _gae, True, False, "step", False),
        EstimatorInfo("ppo", _gae, True, False, "epochs", True),
    )
}
ESTIMATORS: tuple[str, ...] = tuple(REGISTRY)


def info(estimator: str) -> EstimatorInfo:
    """The registry entry of ``estimator``.

    Raises:
      ValueError: naming the allowed estimators.
    """
    try:
        return REGISTRY[estimator]
    except KeyError:
        raise ValueError(
            f"estimator={estimator!r} is unknown; allowed: {', '.join(ESTIMATORS)}"
        ) from None


def weights(
    estimator: str,
    reward: Array,
    values: Array,
    next_values: Array,
    terminated: Array,
    truncated: Array,
    *,
    gamma: float | Array,
    lam: float | Array,
) -> Weights:
    """Compute Ψ_t (and the critic target) for a static estimator name.

    Args:
      estimator: one of ``ESTIMATORS``.
      reward, values, next_values, terminated, truncated: ``[T, ...]`` as in
        ``jaxpg.returns``. ``values``/``next_values`` are ignored by the
        critic-free estimators, which require complete episodes.
      gamma, lam: floats or traced scalars.

    Returns:
      :class:`Weights` with ``psi`` ``[T, ...]`` and the critic target.
    """
    return info(estimator).weights(
        reward, values, next_values, terminated, truncated, gamma=gamma, lam=lam
    )


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

    Returns:
      ``(objective, approx_kl, clip_fraction)``; approx KL is the
      low-variance estimator E[(ρ − 1) − log ρ].
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
