"""``dapo`` (ByteDance Seed): clip-higher, a token-level loss and dynamic sampling.

DAPO's objective on a group batch, Ψ_i the group-normalised advantage
(R_i − R̄)/(s + ε) of ``grpo`` on every token of episode i, ρ = π_θ/π_old:

    J(θ) = (1/Σ_{i∈K} |τ_i|) Σ_{i∈K} Σ_t min(ρ_it Ψ_i, clip(ρ_it, 1 − ε_low, 1 + ε_high) Ψ_i)

* **clip-higher**: ε_low = ``Config.clip_eps`` (traced), ε_high a static field
  of the update kind (:func:`kind`, default 0.28 for 0.2), so a token whose
  probability is small can rise further before it is clipped.
* **token-level mean** over the whole batch (not GRPO's per-sequence mean),
  times the kept episodes' mean length (the registry's ``length_scaled``
  convention): the gradient is (1/|K|) Σ_{i∈K} Σ_t ∇log π · Ψ_i.
* **dynamic sampling, by masking with fixed shapes**: K is the set of episodes
  whose group has spread (not all returns equal). DAPO draws more groups until
  the batch is full; inside one compiled program the batch has a fixed shape,
  so jaxpg keeps every group and gives the groups without spread no weight
  (their Ψ is 0 already) while the normaliser counts only the kept episodes:
  Ψ_i·N/|K| per trajectory. Masking instead of redrawing costs no second
  rollout and no shape that depends on the data; the price is a smaller
  effective batch when many groups have no spread (and the entropy bonus and
  the metrics still average over every token, masked groups included).
* **overlong penalty** (optional, :func:`make_weights`): DAPO's soft length
  penalty added to R_i before the group statistics.

**Expectation at θ_old** (ρ = 1): given the kept groups, each is an i.i.d.
draw from the law of a group *conditioned on spread*, so the expectation
becomes conditional: with M = B/G groups, p = P(a group has spread) and
g = (1/G) Σ_i ∇log p(τ_i) Ψ_i (which is 0 for a group without spread),

    E[ĝ] = P(K ≠ ∅) · E[g | spread] = (1 − (1 − p)^M)/p · E[g],

a known positive multiple of ``cispo``'s expectation E[g]
(:func:`jaxpg.groups.exact_group_gradient` with ``"std"`` and
``per_length=False``), hence **the same biased direction** (on TwoStep,
γ = 0.9, G = 4: cosine 0.992 with ∇J), lengthened by the conditioning. On
TwoStep with G = 2 and M = 2 groups, 1 − p = 0.277 and the factor is 1.277;
``tests/test_llm.py`` checks the formula against a direct enumeration of all
4⁴ batches and the trainer's gradient against both.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxpg import losses
from jaxpg.updates import EPOCHS, UpdateKind

Array = jax.Array


def clip_higher_objective(
    log_prob: Array,
    old_log_prob: Array,
    adv: Array,
    mask: Array,
    eps_low: float | Array,
    eps_high: float | Array,
) -> tuple[Array, Array, Array]:
    """E[min(ρ Â, clip(ρ, 1 − ε_low, 1 + ε_high) Â)] over the masked tokens.

    Args:
      log_prob: log π_θ(a_t|s_t), any shape.
      old_log_prob: log π_old(a_t|s_t), same shape.
      adv: Â_t, same shape (not differentiated).
      mask: 0/1 float32, same shape.
      eps_low: 1 − ε_low is the lower clip (a float or traced scalar).
      eps_high: 1 + ε_high is the upper clip.

    Returns:
      ``(objective, approx_kl, clip_frac)`` float32 scalars (masked means; the
      last two carry no gradient).

    Example:
      >>> lp = jnp.log(jnp.array([0.125])); old = jnp.log(jnp.array([0.1]))
      >>> one = jnp.ones(1)  # ρ = 1.25: inside 1 + 0.28, outside 1 + 0.2
      >>> float(jax.grad(lambda l: clip_higher_objective(l, old, one, one, 0.2, 0.28)[0])(lp)[0])
      1.25
    """
    adv = jax.lax.stop_gradient(adv)
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    low, high = 1.0 - eps_low, 1.0 + eps_high
    clipped = jnp.clip(ratio, low, high)
    obj = losses.masked_mean(jnp.minimum(ratio * adv, clipped * adv), mask)
    kl = losses.masked_mean(jax.lax.stop_gradient((ratio - 1.0) - log_ratio), mask)
    out = jnp.logical_or(ratio > high, ratio < low).astype(jnp.float32)
    frac = losses.masked_mean(jax.lax.stop_gradient(out), mask)
    return obj, kl, frac


def dynamic_sampling_weights(ret: Array, group_size: int) -> Array:
    """Ψ_i·N/|K| ``[B]``: grpo's std-normalised advantage, groups without spread masked.

    Args:
      ret: R_i ``[B]`` (B = N = groups × G, group-major).
      group_size: G ≥ 2.

    Returns:
      ``[B]``: (R_i − R̄)/(s + ε) · N/|K| in groups with spread, 0 in the others
      (and everywhere when no group has spread).

    Example:
      >>> r = jnp.array([1.0, 3.0, 2.0, 2.0])  # group 2 has no spread: K = group 1
      >>> [round(x, 4) for x in dynamic_sampling_weights(r, 2).tolist()]  # ±1/√2 · 4/2
      [-1.4142, 1.4142, 0.0, 0.0]
    """
    from jaxpg import estimators  # the registry imports this module

    r = ret.reshape(-1, group_size)
    spread = (jnp.max(r, axis=1) > jnp.min(r, axis=1)).astype(ret.dtype)  # [M]
    kept = jnp.maximum(jnp.sum(spread) * group_size, 1.0)
    psi = estimators.group_baseline(ret, group_size, "std").reshape(r.shape)
    return (psi * spread[:, None] * (ret.shape[0] / kept)).reshape(-1)


def overlong_penalty(length: Array, max_length: int, cache: int) -> Array:
    """DAPO's soft overlong penalty of an episode of ``length`` steps.

    0 up to L_max − L_cache, then falling linearly to −1 at L_max, −1 beyond.

    Args:
      length: |τ_i| ``[B]`` float32.
      max_length: L_max (≥ 1).
      cache: L_cache, the width of the linear zone (1 ≤ cache ≤ max_length).

    Returns:
      The penalty ``[B]`` (≤ 0), added to R_i.

    Example:
      >>> overlong_penalty(jnp.array([4.0, 6.0, 8.0, 9.0]), 8, 4).tolist()
      [0.0, -0.5, -1.0, -1.0]
    """
    start = max_length - cache
    return jnp.where(length <= start, 0.0, jnp.maximum((start - length) / cache, -1.0))


def _weights(reward, values, next_values, terminated, truncated, *, gamma, lam, group_size,
             overlong):  # fmt: skip
    del values, next_values, lam
    from jaxpg import estimators
    from jaxpg.estimators import Weights

    ret, length = estimators._first_episode(reward, terminated, truncated, gamma=gamma)
    if overlong is not None:
        ret = ret + overlong_penalty(length, *overlong)
    # The trainer averages over all T·B steps (Σ mask = N·L̄); × L̄ makes the step
    # (1/|K|) Σ_{i∈K} Σ_t ∇log π · Ψ_i, DAPO's token mean times the kept mean length.
    psi = dynamic_sampling_weights(ret, group_size) * jnp.mean(length)
    return Weights(jnp.broadcast_to(psi, reward.shape), None)


def make_weights(max_length: int | None = None, cache: int | None = None):
    """DAPO's weight rule, optionally with the overlong penalty.

    Args:
      max_length: L_max of :func:`overlong_penalty`; ``None``: no penalty.
      cache: L_cache (required with ``max_length``).

    Returns:
      A grouped ``weights`` function for :func:`jaxpg.estimators.register`.

    Raises:
      ValueError: a bad ``max_length``/``cache``, naming it.
    """
    overlong = None
    if max_length is not None:
        if not (isinstance(max_length, int) and max_length >= 1):
            raise ValueError(f"dapo: max_length={max_length!r} is invalid: must be an int >= 1")
        if not (isinstance(cache, int) and 1 <= cache <= max_length):
            raise ValueError(f"dapo: cache={cache!r} is invalid: must be an int in [1, max_length]")
        overlong = (max_length, cache)
    return functools.partial(_weights, overlong=overlong)


def _surrogate(log_prob, old_log_prob, psi, mask, clip_eps, normalizer, *, eps_high):
    """:func:`clip_higher_objective` with ε_low = ``clip_eps``."""
    del normalizer
    return clip_higher_objective(log_prob, old_log_prob, psi, mask, clip_eps, eps_high)


def kind(eps_high: float = 0.28) -> UpdateKind:
    """PPO's epochs (:data:`jaxpg.updates.EPOCHS`) on the clip-higher objective.

    Args:
      eps_high: static upper clip ε_high (> 0); ε_low is ``Config.clip_eps``.

    Returns:
      An :class:`~jaxpg.updates.UpdateKind` named ``"dapo"``.
    """
    if not float(eps_high) > 0.0:
        raise ValueError(f"dapo.kind: eps_high={eps_high!r} is invalid: must be > 0")
    return EPOCHS._replace(name="dapo", surrogate=functools.partial(_surrogate, eps_high=eps_high))


#: The registered row's weights (no overlong penalty) and update kind (ε_high = 0.28).
WEIGHTS = make_weights()
KIND = kind()
