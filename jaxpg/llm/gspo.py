"""``gspo`` (Qwen3): one length-normalised importance ratio per sequence, clipped per sequence.

GSPO replaces PPO's per-token ratio by the sequence's geometric-mean ratio

    s_i(θ) = (π_θ(τ_i)/π_old(τ_i))^{1/|τ_i|} = exp((1/|τ_i|) Σ_t (log π_θ − log π_old)(a_t|s_t))

and maximises (1/N) Σ_i min(s_i Ψ_i, clip(s_i, 1 ± ε) Ψ_i), Ψ_i the
group-normalised advantage (R_i − R̄)/(s + ε) of ``grpo`` (ε = ``clip_eps``;
GSPO's paper uses ε of order 3e-4, since s_i moves far less than a token's
ratio). A sequence is clipped or kept whole. The weights are ``grpo``'s
(Ψ_i·L̄/|τ_i| on each token, L̄ the batch's mean length), so the masked token
mean of min(s_i ψ_t, clip(s_i) ψ_t) over the batch equals the objective above
exactly (min(s·cA, clip(s)·cA) = c·min(sA, clip(s)A) for c > 0).

The ratio needs each sequence whole, so the update kind's minibatches are
whole episodes (``num_minibatches`` must divide ``num_envs``), taken by
:func:`jaxpg.updates.common.sequence_minibatches`, and its surrogate reads
arrays ``[T, B]`` with time on axis 0.

**Expectation at θ_old** (s_i = 1 and ∇s_i = (1/|τ_i|) ∇log p(τ_i)): the
gradient is (1/N) Σ_i Ψ_i ∇log p(τ_i)/|τ_i|, *exactly* ``grpo``'s, so E[ĝ] is
grpo's expectation (:func:`jaxpg.groups.exact_group_gradient` with
``group_baseline(·, G, "std")`` and ``per_length=True``): **a biased
direction**, on TwoStep (γ = 0.9, G = 4) cosine 0.992 with ∇J and 0.40 of its
length. GSPO and GRPO differ only off-policy (later epochs), where GSPO clips
whole sequences.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxpg import losses
from jaxpg.updates import UpdateKind, base

Array = jax.Array


def sequence_ratio(log_prob: Array, old_log_prob: Array, mask: Array) -> Array:
    """s_i = exp(Σ_t m_t (log π_θ − log π_old) / Σ_t m_t), one per column.

    Args:
      log_prob: log π_θ(a_t|s_t) ``[T, B]`` (time on axis 0).
      old_log_prob: log π_old, ``[T, B]``.
      mask: 0/1 ``[T, B]``, the steps of each column's episode.

    Returns:
      s ``[B]`` float32 (1 for an empty column).

    Example:
      >>> lp = jnp.log(jnp.array([[0.8], [0.5]])); old = jnp.log(jnp.array([[0.4], [0.5]]))
      >>> round(float(sequence_ratio(lp, old, jnp.ones((2, 1)))[0]), 4)  # √(2 · 1)
      1.4142
    """
    total = jnp.sum((log_prob - old_log_prob) * mask, axis=0)
    return jnp.exp(total / jnp.maximum(jnp.sum(mask, axis=0), 1.0))


def gspo_objective(
    log_prob: Array, old_log_prob: Array, psi: Array, mask: Array, clip_eps: float | Array
) -> tuple[Array, Array, Array]:
    """The masked token mean of min(s_i ψ_t, clip(s_i, 1 ± ε) ψ_t) over ``[T, B]``.

    Args:
      log_prob: log π_θ(a_t|s_t) ``[T, B]``, one episode per column.
      old_log_prob: log π_old ``[T, B]``.
      psi: ψ_t ``[T, B]`` (not differentiated; ``grpo``'s weights).
      mask: 0/1 ``[T, B]``.
      clip_eps: ε, a float or a traced scalar.

    Returns:
      ``(objective, approx_kl, clip_frac)`` float32 scalars; ``approx_kl`` is the
      token-level E[(ρ − 1) − log ρ], ``clip_frac`` the fraction of tokens whose
      sequence is clipped (neither carries gradient).
    """
    psi = jax.lax.stop_gradient(psi)
    s = sequence_ratio(log_prob, old_log_prob, mask)[None]  # [1, B]
    clipped = jnp.clip(s, 1.0 - clip_eps, 1.0 + clip_eps)
    obj = losses.masked_mean(jnp.minimum(s * psi, clipped * psi), mask)
    log_ratio = log_prob - old_log_prob
    kl = losses.masked_mean(jax.lax.stop_gradient(jnp.exp(log_ratio) - 1.0 - log_ratio), mask)
    out = jnp.broadcast_to((jnp.abs(s - 1.0) > clip_eps).astype(jnp.float32), mask.shape)
    frac = losses.masked_mean(jax.lax.stop_gradient(out), mask)
    return obj, kl, frac


def surrogate(log_prob, old_log_prob, psi, mask, clip_eps, normalizer):
    """:func:`gspo_objective` (a masked mean: ``normalizer`` unused)."""
    del normalizer
    return gspo_objective(log_prob, old_log_prob, psi, mask, clip_eps)


def normalizer(mask, episodes: bool) -> float:
    """Unused by the masked-mean surrogate."""
    del mask, episodes
    return 1.0


def _epoch(run, hp, batch, carry, key):
    """One pass over ``num_minibatches`` shuffled minibatches of whole episodes."""
    from jaxpg.updates import common

    step = lambda c, b: common.sgd_step(run, hp, 1.0, c, b)  # noqa: E731
    return jax.lax.scan(step, carry, common.sequence_minibatches(run, batch, key))


def step(run, hp, carry, batch, key, normalizer):
    """``num_epochs`` shuffled epochs of whole-episode minibatches; ``aux`` averaged."""
    del normalizer
    epoch = lambda c, k: _epoch(run, hp, batch, c, k)  # noqa: E731
    carry, aux = jax.lax.scan(epoch, carry, jax.random.split(key, run.config.num_epochs))
    return carry, jax.tree.map(jnp.mean, aux)


def check_config(config: Any) -> None:
    """Minibatches are whole episodes: ``num_minibatches`` divides ``num_envs``."""
    if config.num_envs % config.num_minibatches:
        base.fail(
            "num_minibatches",
            config.num_minibatches,
            f"must divide num_envs={config.num_envs} (estimator {config.estimator!r}'s "
            "minibatches are whole episodes)",
        )


#: GSPO's update kind: epochs of whole-episode minibatch steps on :func:`gspo_objective`.
KIND = UpdateKind(
    name="gspo",
    step=step,
    surrogate=surrogate,
    normalizer=normalizer,
    optimizer_steps=base.epochs_times_minibatches,
    check_config=check_config,
)
