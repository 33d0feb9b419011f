"""``cispo`` (MiniMax-M1): clip the *detached* importance weight, keep log π's gradient.

CISPO's objective on a group batch (Ψ_i the group-normalised advantage of
``grpo``, (R_i − R̄)/(s + ε), the same on every token of episode i):

    J(θ) = (1/Σ_i |τ_i|) Σ_i Σ_t sg(clip(ρ_it, 1 − ε_low, 1 + ε_high)) · Ψ_i · log π_θ(a_t|s_t)

with ρ = π_θ/π_old and sg the stop-gradient. Unlike PPO's min-clip, whose
gradient is zero on a token whose ratio left the trust interval, every token
keeps a gradient ∇log π scaled by the clipped weight: clipping bounds the
step's size, never drops a token. ε_high is ``Config.clip_eps`` (traced);
ε_low is a static field of the update kind, by default ``None`` (no lower
bound, the weight is only capped from above, as MiniMax-M1 does).

The token mean is multiplied by the batch's mean episode length L̄ (the
registry's ``length_scaled`` convention, as ``grpo_nostd``), so the gradient
is (1/N) Σ_i Σ_t ∇log π · Ψ_i · ŵ_it: the direction of each batch's step is
CISPO's, its length L̄ times the token mean.

**Expectation at θ_old** (ρ = 1, every weight 1): E[ĝ] = E[(1/G) Σ_i ∇log p(τ_i) Ψ_i]
with Ψ the std-normalised group advantage and no 1/|τ_i| (the token mean, not
GRPO's per-sequence mean), :func:`jaxpg.groups.exact_group_gradient` with
``group_baseline(·, G, "std")`` and ``per_length=False``. Dividing by s
reweights groups, so it is **a biased direction**: on TwoStep
(``tests/tiny_mdp.py``, γ = 0.9, G = 4), where every episode has 2 steps, it is
exactly 2× ``grpo``'s expectation, cosine 0.992 with ∇J and 0.79 of its length
(``tests/test_llm.py`` computes both).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxpg import losses
from jaxpg.updates import EPOCHS, UpdateKind

Array = jax.Array


def cispo_objective(
    log_prob: Array,
    old_log_prob: Array,
    adv: Array,
    mask: Array,
    eps_high: float | Array,
    eps_low: float | Array | None = None,
) -> tuple[Array, Array, Array]:
    """E[sg(clip(ρ, 1 − ε_low, 1 + ε_high)) · Â · log π_θ] over the masked tokens.

    Args:
      log_prob: log π_θ(a_t|s_t), any shape (``[T, B]`` or ``[N]``).
      old_log_prob: log π_old(a_t|s_t) of the rollout, same shape.
      adv: Â_t, same shape (not differentiated).
      mask: 0/1 float32, same shape.
      eps_high: the weight's upper bound is 1 + ε_high (a float or traced scalar).
      eps_low: the lower bound is 1 − ε_low; ``None``: 0 (no lower bound).

    Returns:
      ``(objective, approx_kl, clip_frac)`` float32 scalars (masked means; the
      last two carry no gradient; ``clip_frac`` counts tokens whose weight was
      clipped, which still pass gradient).

    Example:
      >>> lp = jnp.log(jnp.array([0.9, 0.5])); old = jnp.log(jnp.array([0.5, 0.5]))
      >>> adv = jnp.ones(2); m = jnp.ones(2)
      >>> g = jax.grad(lambda l: cispo_objective(l, old, adv, m, 0.2)[0])(lp)
      >>> [round(float(x), 3) for x in g]  # weights clip(1.8) = 1.2 and 1, over 2 tokens
      [0.6, 0.5]
    """
    adv = jax.lax.stop_gradient(adv)
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    low = 0.0 if eps_low is None else 1.0 - eps_low
    high = 1.0 + eps_high
    weight = jax.lax.stop_gradient(jnp.clip(ratio, low, high))
    obj = losses.masked_mean(weight * adv * log_prob, mask)
    kl = losses.masked_mean(jax.lax.stop_gradient((ratio - 1.0) - log_ratio), mask)
    out = jnp.logical_or(ratio > high, ratio < low).astype(jnp.float32)
    frac = losses.masked_mean(jax.lax.stop_gradient(out), mask)
    return obj, kl, frac


def _surrogate(log_prob, old_log_prob, psi, mask, clip_eps, normalizer, *, eps_low):
    """The update kind's surrogate: :func:`cispo_objective`, ε_high = ``clip_eps``."""
    del normalizer
    return cispo_objective(log_prob, old_log_prob, psi, mask, clip_eps, eps_low)


def kind(eps_low: float | None = None) -> UpdateKind:
    """PPO's epochs of minibatch steps (:data:`jaxpg.updates.EPOCHS`) on CISPO's objective.

    Args:
      eps_low: static lower clip ε_low of the weight (``None``: no lower bound).

    Returns:
      An :class:`~jaxpg.updates.UpdateKind` named ``"cispo"``; register a
      variant with ``register(name, weights, ..., update=kind(0.2))``.
    """
    if eps_low is not None and not 0.0 < float(eps_low) <= 1.0:
        raise ValueError(f"cispo.kind: eps_low={eps_low!r} is invalid: must be in (0, 1] or None")
    surrogate = functools.partial(_surrogate, eps_low=eps_low)
    return EPOCHS._replace(name="cispo", surrogate=surrogate)


#: The registered row's update kind: ε_high = ``clip_eps``, no lower bound.
KIND = kind()
