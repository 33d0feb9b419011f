"""One program per run: ``train(key)`` is an outer ``lax.scan`` of updates.

The returned function is pure, so ``jax.jit(train)`` compiles the whole run and
``jax.vmap(train)`` over keys (and over :class:`HParams`) trains many runs in one
program. :func:`make_sharded_train` compiles the same run with its env batch
split over several devices (:mod:`jaxpg.sharding`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax

from jaxpg import sharding
from jaxpg.config import Config, HParams
from jaxpg.update import TrainState, init_state, make_agent, update


class TrainOutput(NamedTuple):
    state: TrainState  # final state (params, optimizer, envs, key)
    metrics: dict  # per-update metrics, each ``[num_updates]``


def make_train(config: Config, env=None, env_params=None):
    """Return a pure ``train(key, hparams=None) -> TrainOutput`` for ``config``.

    ``hparams`` defaults to ``config.hparams()``; pass an :class:`HParams` (or
    vmap over one) to sweep learning rate, γ, λ, clip ε and coefficients without
    recompiling. Metrics include ``episode_return`` (mean return of the
    episodes finished in each update; NaN until one finishes), ``env_steps``,
    ``policy_loss``, ``value_loss``, ``entropy``, ``approx_kl``, ``clip_frac``,
    ``grad_norm`` and ``lr``.

    On a small CPU, ``jax.vmap`` over whole runs can deadlock XLA:CPU's worker
    threads in the batched QR of the orthogonal initialisation; ``jaxpg.sweep``
    avoids it by initialising runs one at a time.

    Example:
      >>> import jax, jaxpg
      >>> cfg = jaxpg.Config(num_envs=2, num_steps=16, total_timesteps=64)
      >>> out = jax.jit(jaxpg.make_train(cfg))(jax.random.key(0))
      >>> out.metrics["episode_return"].shape
      (2,)
    """
    agent = make_agent(config, env, env_params)

    def train(key: jax.Array, hparams: HParams | None = None) -> TrainOutput:
        return _train(agent, None, key, hparams)

    train.num_updates = agent.num_updates
    return train


def _train(agent, shardings, key: jax.Array, hparams: HParams | None) -> TrainOutput:
    """The whole run; with ``shardings``, the state is pinned to them after every update."""
    hp = agent.config.hparams() if hparams is None else hparams
    state = sharding.constrain(init_state(agent, key), shardings)

    def body(s, _):
        s, metrics = update(agent, s, hp)
        return sharding.constrain(s, shardings), metrics

    state, metrics = jax.lax.scan(body, state, None, length=agent.num_updates)
    return TrainOutput(state, metrics)


def make_sharded_train(config: Config, devices=None, env=None, env_params=None):
    """Return a jitted ``train(key, hparams=None) -> TrainOutput`` with the env batch sharded.

    The program is :func:`make_train`'s, compiled once over a 1-D mesh of
    ``devices`` (:func:`jaxpg.sharding.env_mesh`): the state's env carry (every
    leaf ``[num_envs, ...]``) is split along ``"envs"`` and pinned there after
    each update, so each device steps ``num_envs / len(devices)`` environments
    and the rollout's ``[T, B, ...]`` tensors stay split along ``B``; params,
    optimizer state and metrics are replicated. PPO's shuffled minibatches are
    split over the devices too, so each gradient step is data parallel (XLA
    gathers the batch for the shuffle and sums the gradients). jax's
    partitionable threefry draws the same random numbers however the arrays are
    split, so the result equals the
    single-device run's up to the order of floating-point sums. The final
    ``state.env`` stays sharded; ``metrics`` are replicated.

    Args:
      config: the run; ``config.num_envs`` must be a multiple of the device count.
      devices: devices to shard over (default: all, every host after
        :func:`jaxpg.sharding.initialize_distributed`).
      env: optional gymnax ``Environment`` instance overriding ``config.env``.
      env_params: optional params for ``env``.

    Returns:
      The jitted ``train``, with attributes ``num_updates``, ``mesh`` and
      ``shardings`` (the ``TrainState`` of :class:`~jax.sharding.NamedSharding`).

    Raises:
      ValueError: ``num_envs`` does not split evenly over the devices (raised
        before anything is traced).

    Example:
      >>> import jax, jaxpg
      >>> from jaxpg.train import make_sharded_train
      >>> cfg = jaxpg.Config(num_envs=2, num_steps=16, total_timesteps=64)
      >>> train = make_sharded_train(cfg, devices=jax.devices()[:1])
      >>> train(jax.random.key(0)).metrics["episode_return"].shape
      (2,)
    """
    mesh = sharding.env_mesh(devices)
    sharding.check_env_split(config.num_envs, mesh.size)
    agent = make_agent(config, env, env_params)._replace(mesh=mesh)
    abstract = jax.eval_shape(lambda k: init_state(agent, k), jax.random.key(0))
    shardings = sharding.state_shardings(abstract, mesh)
    replicated = shardings.update_step

    def train(key: jax.Array, hparams: HParams | None = None) -> TrainOutput:
        return _train(agent, shardings, key, hparams)

    jitted = jax.jit(train, out_shardings=TrainOutput(shardings, replicated))
    jitted.num_updates, jitted.mesh, jitted.shardings = agent.num_updates, mesh, shardings
    return jitted
