"""``epochs``: PPO's ``num_epochs × num_minibatches`` clipped-ratio steps per rollout.

Each epoch shuffles the batch (one permutation, :mod:`jaxpg.shuffle`) and takes
one Optax step per minibatch on E[min(ρÂ, clip(ρ, 1 ± ε)Â)]
(:func:`jaxpg.losses.ppo_surrogate`); a recurrent network's minibatches are
whole env sequences. The metrics are the means over all steps.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxpg import losses
from jaxpg.updates import base
from jaxpg.updates.base import UpdateKind


def surrogate(log_prob, old_log_prob, psi, mask, clip_eps, normalizer):
    """:func:`jaxpg.losses.ppo_surrogate` (a masked mean: ``normalizer`` unused)."""
    del normalizer
    return losses.ppo_surrogate(log_prob, old_log_prob, psi, mask, clip_eps)


def normalizer(mask, episodes: bool) -> float:
    """Unused by the clipped surrogate, which averages over the unmasked steps."""
    del mask, episodes
    return 1.0


def _epoch(run, hp, batch, carry, key):
    """One pass over the shuffled batch ``[T, B, ...]`` in ``num_minibatches`` minibatches."""
    from jaxpg import blocking
    from jaxpg.updates import common

    n = batch.mask.size // run.config.num_minibatches
    chunk = None if run.recurrent else blocking.grad_chunk_size(run, n)
    step = lambda c, b: common.sgd_step(run, hp, 1.0, c, b, chunk)  # noqa: E731
    return jax.lax.scan(step, carry, common.split(run, batch, key))


def step(run, hp, carry, batch, key, normalizer):
    """``num_epochs`` shuffled epochs; ``aux`` averaged over every minibatch step."""
    del normalizer
    epoch = lambda c, k: _epoch(run, hp, batch, c, k)  # noqa: E731
    carry, aux = jax.lax.scan(epoch, carry, jax.random.split(key, run.config.num_epochs))
    return carry, jax.tree.map(jnp.mean, aux)


def check_config(config: Any) -> None:
    """Minibatches divide the segment batch; with ``network="gru"`` they divide the envs."""
    if config.network == "gru" and config.num_envs % config.num_minibatches:
        base.fail(
            "num_minibatches",
            config.num_minibatches,
            f"must divide num_envs={config.num_envs} with network='gru' (minibatches "
            "are whole env sequences)",
        )
    base.check_minibatches(config)


EPOCHS = UpdateKind(
    name="epochs",
    step=step,
    surrogate=surrogate,
    normalizer=normalizer,
    optimizer_steps=base.epochs_times_minibatches,
    check_config=check_config,
    check_run=base.check_minibatch_run,
)
