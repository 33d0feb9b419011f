"""The machinery the built-in update kinds share, traced inside the compiled update.

:class:`Batch` is what a kind's step receives; :func:`loss_fn` is the actor-critic
loss with the kind's policy surrogate; :func:`sgd_step` is one Optax step on it;
:func:`split` cuts a ``[T, B, ...]`` batch into shuffled minibatches (samples,
or whole sequences for a recurrent network). Imported when an update is first
traced, so ``import jaxpg`` stays free of flax and Optax.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, PartitionSpec

from jaxpg import blocking, losses, networks, sharding, shuffle

if TYPE_CHECKING:
    from jaxpg.config import HParams
    from jaxpg.runspec import RunSpec


class Batch(NamedTuple):
    """What the loss needs, flattened to ``[N, ...]`` (PPO minibatches) or ``[T, B, ...]``."""

    obs: jax.Array
    action: jax.Array
    old_log_prob: jax.Array
    psi: jax.Array
    value_target: jax.Array
    mask: jax.Array
    # Recurrent networks only ([T, B] layout): the state before step 0 [B, ...], and
    # which steps ended an episode [T, B] (the state is zeroed after them).
    hidden0: Any = None
    done: Any = None
    # The critic's values at rollout time [T, B] (value clipping only, else None).
    old_value: Any = None


def critic_loss(run: RunSpec, hp: HParams, value: jax.Array, batch: Batch) -> jax.Array:
    """The critic's regression loss: :func:`jaxpg.losses.value_loss`, or with
    ``Config.value_clip_eps`` set :func:`jaxpg.losses.clipped_value_loss`."""
    if run.config.switched_on("value_clip_eps"):
        return losses.clipped_value_loss(
            value, batch.old_value, batch.value_target, batch.mask, hp.value_clip_eps
        )
    return losses.value_loss(value, batch.value_target, batch.mask)


def model_for(run: RunSpec, batch: Batch) -> networks.Model:
    """The networks as the losses call them: ``run.model`` itself, or for a recurrent
    model its replay over ``batch``'s sequences (:func:`jaxpg.networks.sequence_view`).

    Args:
      run: the run's set-up.
      batch: the batch the loss is taken on (``hidden0``/``done`` are read only
        for a recurrent model, which needs the ``[T, B, ...]`` layout).

    Returns:
      A :class:`~jaxpg.networks.Model` to call on ``batch.obs``.
    """
    if run.recurrent:
        return networks.sequence_view(run.model, batch.hidden0, batch.done)
    return run.model


def loss_fn(run: RunSpec, params: Any, batch: Batch, hp: HParams, normalizer):
    """−(policy surrogate + ent_coef·entropy) + vf_coef·value loss, and metrics.

    The policy surrogate is the estimator's update kind's
    (:attr:`jaxpg.updates.UpdateKind.surrogate`: PPO's clipped objective for
    ``epochs``, :func:`jaxpg.losses.pg_surrogate` for ``step``); the value loss
    enters only for estimators with a critic.

    Args:
      run: the run's set-up (estimator, networks).
      params: the model's parameters (differentiated).
      batch: a :class:`Batch`, ``[N, ...]`` (a minibatch) or ``[T, B, ...]``.
      hp: traced hyperparameters (``clip_eps``, ``ent_coef``, ``vf_coef``).
      normalizer: the surrogate's divisor for ``pg_surrogate`` (episodes: B;
        segments: the unmasked steps); unused by PPO.

    Returns:
      ``(loss, aux)``: the float32 scalar loss and a dict of float32 scalar
      diagnostics (``policy_loss``, ``value_loss``, ``entropy``, ``approx_kl``,
      ``clip_frac``; the last two 0 outside PPO).
    """
    critic = run.estimator.critic
    model = model_for(run, batch)
    if critic:
        dist, v = model.policy_value(params, batch.obs)
    else:
        dist = model.policy(params, batch.obs)
    logp = networks.log_prob(dist, batch.action)
    ent = losses.masked_mean(networks.entropy(dist), batch.mask)
    obj, kl, frac = run.estimator.update.surrogate(
        logp, batch.old_log_prob, batch.psi, batch.mask, hp.clip_eps, normalizer
    )
    loss = -(obj + hp.ent_coef * ent)
    v_loss = jnp.zeros(())
    if critic:
        v_loss = critic_loss(run, hp, v, batch)
        loss = loss + hp.vf_coef * v_loss
    aux = {
        "policy_loss": -obj,
        "value_loss": v_loss,
        "entropy": ent,
        "approx_kl": kl,
        "clip_frac": frac,
    }
    return loss, aux


def sgd_step(run: RunSpec, hp: HParams, normalizer, carry, batch: Batch, chunk=None):
    """One optimizer step on ``batch`` (with ``chunk``, its gradient over chunks of
    that many samples; :func:`jaxpg.blocking.chunked_value_and_grad`)."""
    params, opt_state = carry
    grad_fn = jax.value_and_grad(lambda p, b: loss_fn(run, p, b, hp, normalizer), has_aux=True)
    (loss, aux), grads = blocking.chunked_value_and_grad(grad_fn, params, batch, chunk)
    extra = {"approx_kl": aux["approx_kl"]} if run.config.switched_on("kl_adaptive_lr") else {}
    updates, opt_state = run.optimizer.build(hp).update(grads, opt_state, params, **extra)
    params = optax.apply_updates(params, updates)
    return (params, opt_state), {**aux, "loss": loss, "grad_norm": optax.global_norm(grads)}


def minibatches(run: RunSpec, flat: Batch, key: jax.Array) -> Batch:
    """Shuffle ``[N, ...]`` leaves with one permutation; split into ``[M, N/M, ...]``."""
    n = flat.mask.shape[0]
    m = run.config.num_minibatches
    if run.config.minibatch_shuffle == "sort":
        perm = jax.random.permutation(key, n)
    else:
        perm = shuffle.permutation(key, n)
    shuffled = jax.tree.map(lambda x: x[perm].reshape((m, n // m) + x.shape[1:]), flat)
    mesh = run.mesh
    if mesh is not None and mesh.size > 1 and (n // m) % mesh.size == 0:
        rows = NamedSharding(mesh, PartitionSpec(None, sharding.ENV_AXIS))
        shuffled = jax.lax.with_sharding_constraint(
            shuffled, jax.tree.map(lambda _: rows, shuffled)
        )
    return shuffled


def sequence_minibatches(run: RunSpec, batch: Batch, key: jax.Array) -> Batch:
    """A recurrent run's minibatches: whole env sequences, ``[M, T, B/M, ...]``
    (``hidden0`` ``[M, B/M, ...]``), the envs shuffled by one permutation."""
    b = batch.mask.shape[1]
    m = run.config.num_minibatches
    perm = jax.random.permutation(key, b)

    def split(x, axis):
        x = jnp.take(x, perm, axis=axis)
        x = x.reshape(x.shape[:axis] + (m, b // m) + x.shape[axis + 1 :])
        return jnp.moveaxis(x, axis, 0)

    hidden0 = jax.tree.map(lambda x: split(x, 0), batch.hidden0)
    rest = batch._replace(hidden0=None)
    return jax.tree.map(lambda x: split(x, 1), rest)._replace(hidden0=hidden0)


def split(run: RunSpec, batch: Batch, key: jax.Array) -> Batch:
    """``num_minibatches`` shuffled minibatches of ``batch`` ``[T, B, ...]``: samples
    (feed-forward), or whole sequences (recurrent)."""
    if run.recurrent:
        return sequence_minibatches(run, batch, key)
    flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), batch)
    return minibatches(run, flat, key)
