"""``step``: one full-batch gradient step per rollout, on-policy.

The surrogate is Σ mask·log π·Ψ / normalizer (:func:`jaxpg.losses.pg_surrogate`):
for complete episodes the divisor is the number of episodes N (the unbiased
(1/N) Σ_i Σ_t), for segments the number of unmasked steps.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxpg import losses
from jaxpg.updates.base import UpdateKind


def surrogate(log_prob, old_log_prob, psi, mask, clip_eps, normalizer):
    """:func:`jaxpg.losses.pg_surrogate`; no KL or clip fraction (zeros)."""
    del old_log_prob, clip_eps
    zero = jnp.zeros(())
    return losses.pg_surrogate(log_prob, psi, mask, normalizer), zero, zero


def normalizer(mask, episodes: bool):
    """N episodes (``mask``'s batch size B, one complete episode per column) or Σ mask."""
    return float(mask.shape[1]) if episodes else jnp.sum(mask)


def step(run, hp, carry, batch, key, normalizer):
    """One Optax step on the whole batch ``[T, B, ...]`` (``key`` unused)."""
    del key
    from jaxpg.updates import common  # flax/Optax: only once an update is traced

    return common.sgd_step(run, hp, normalizer, carry, batch)


STEP = UpdateKind(
    name="step",
    step=step,
    surrogate=surrogate,
    normalizer=normalizer,
    optimizer_steps=lambda config: 1,
)
