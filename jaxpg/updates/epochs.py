"""``epochs``: PPO's ``num_epochs × num_minibatches`` clipped-ratio steps per rollout.

Each epoch shuffles the batch (one permutation, :mod:`jaxpg.shuffle`) and takes
one Optax step per minibatch on E[min(ρÂ, clip(ρ, 1 ± ε)Â)]
(:func:`jaxpg.losses.ppo_surrogate`); a recurrent network's minibatches are
whole env sequences. The metrics are the means over the steps taken, and
``minibatch_steps`` counts them: all ``num_epochs × num_minibatches``, or fewer
with ``Config.target_kl`` (:func:`early_stop_step`), whose skipped steps are
masked inside the same fixed-shape scans.
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


def early_stop_step(sgd_step, target_kl, carry, batch):
    """One minibatch step unless the update has stopped at its target KL.

    The step's loss is taken at the current parameters, so its ``approx_kl`` is
    the KL of the current policy from the rollout's on this minibatch. Once that
    exceeds ``target_kl`` (or an earlier step did), the step's new parameters and
    optimizer state are discarded: the update has stopped.

    Args:
      sgd_step: ``(carry, batch) -> (carry, aux)``, one Optax step.
      target_kl: the threshold, a float32 scalar.
      carry: ``((params, opt_state), stopped)``, ``stopped`` a bool scalar.
      batch: one minibatch.

    Returns:
      ``(carry, aux)``; ``aux["minibatch_steps"]`` is 1.0 if the step was taken, else 0.0.
    """
    inner, stopped = carry
    new, aux = sgd_step(inner, batch)
    stopped = stopped | (aux["approx_kl"] > target_kl)
    inner = jax.tree.map(lambda old, n: jnp.where(stopped, old, n), inner, new)
    return (inner, stopped), {**aux, "minibatch_steps": 1.0 - stopped.astype(jnp.float32)}


def _epoch(run, hp, batch, carry, key):
    """One pass over the shuffled batch ``[T, B, ...]`` in ``num_minibatches`` minibatches."""
    from jaxpg import blocking
    from jaxpg.updates import common

    n = batch.mask.size // run.config.num_minibatches
    chunk = None if run.recurrent else blocking.grad_chunk_size(run, n)
    step = lambda c, b: common.sgd_step(run, hp, 1.0, c, b, chunk)  # noqa: E731
    if run.config.switched_on("target_kl"):
        sgd = step
        step = lambda c, b: early_stop_step(sgd, hp.target_kl, c, b)  # noqa: E731
    return jax.lax.scan(step, carry, common.split(run, batch, key))


def step(run, hp, carry, batch, key, normalizer):
    """``num_epochs`` shuffled epochs; ``aux`` averaged over the minibatch steps taken."""
    del normalizer
    cfg = run.config
    epoch = lambda c, k: _epoch(run, hp, batch, c, k)  # noqa: E731
    keys = jax.random.split(key, cfg.num_epochs)
    if not cfg.switched_on("target_kl"):
        carry, aux = jax.lax.scan(epoch, carry, keys)
        steps = jnp.asarray(cfg.num_epochs * cfg.num_minibatches, jnp.float32)
        return carry, {**jax.tree.map(jnp.mean, aux), "minibatch_steps": steps}
    (carry, _), aux = jax.lax.scan(epoch, (carry, jnp.zeros((), bool)), keys)
    taken = aux.pop("minibatch_steps")
    steps = jnp.sum(taken)
    mean = lambda x: jnp.sum(x * taken) / jnp.maximum(steps, 1.0)  # noqa: E731
    return carry, {**jax.tree.map(mean, aux), "minibatch_steps": steps}


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
