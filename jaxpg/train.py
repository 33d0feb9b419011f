"""One program per run: ``train(key)`` is an outer ``lax.scan`` of updates.

The returned function is pure, so ``jax.jit(train)`` compiles the whole run and
``jax.vmap(train)`` over keys (and over :class:`HParams`) trains many runs in one
program. :func:`make_sharded_train` compiles the same run with its env batch
split over several devices (:mod:`jaxpg.sharding`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxpg import compiling, loop, sharding
from jaxpg.config import Config, HParams
from jaxpg.runspec import RunSpec, TrainState, init_state, make_runspec


class TrainOutput(NamedTuple):
    state: TrainState  # final state (params, optimizer, envs, key)
    metrics: dict  # per-update metrics, each ``[num_updates]``
    stopped_at: jax.Array  # int32: 0, or the update where ``guard`` stopped the run


def make_train(
    config: Config,
    env: Any = None,
    env_params: Any = None,
    *,
    network: Any = None,
    optimizer: Any = None,
    guard: bool = False,
):
    """Return a pure ``train(key, hparams=None) -> TrainOutput`` for ``config``.

    ``hparams`` defaults to ``config.hparams()``; pass an :class:`HParams` (or
    vmap over one, e.g. ``config.hparams(lr=[...])``) to sweep learning rate,
    γ, λ, clip ε, coefficients and the clip norm without recompiling, also with
    your own network and optimizer. Metrics include ``episode_return`` (mean
    return of the episodes finished in each update; the previous value if none
    did, NaN until one finishes), ``episode_length``, ``env_steps``,
    ``policy_loss``, ``value_loss``, ``entropy``, ``approx_kl``, ``clip_frac``,
    ``grad_norm``, ``lr``, ``update`` and, for critic estimators,
    ``explained_variance``.

    Args:
      config: the run's static configuration.
      env: an environment instance (or id) overriding ``config.env``
        (:mod:`jaxpg.envs`).
      env_params: params for ``env``.
      network: your networks: a :class:`jaxpg.networks.Model`, a
        ``(policy_module, value_module)`` pair of flax modules, or one
        actor-critic flax module returning ``(dist, value)``.
      optimizer: an Optax ``GradientTransformation`` (used as is: it owns its
        learning rate and clipping), or a factory ``learning_rate ->
        GradientTransformation`` (chained after global-norm clipping, driven by
        the traced, annealed ``lr``); default ``config.optimizer``.
      guard: check the hyperparameters (:meth:`HParams.valid`) and stop at the
        first update whose loss or parameters are not finite: that update and
        all later ones are not applied (metrics zero, ``update`` 0) and
        ``stopped_at`` names it. Costs a select per update.

    On a small CPU with jaxlib 0.10, ``jax.vmap`` over whole runs could deadlock
    XLA:CPU's worker threads in the batched QR of the orthogonal initialisation;
    ``import jaxpg`` turns off the scheduler that let it happen
    (:mod:`jaxpg.xla_flags`), and ``jaxpg.sweep`` initialises runs one at a time.

    Example:
      >>> import jax, jaxpg
      >>> cfg = jaxpg.Config(num_envs=2, num_steps=16, total_timesteps=64)
      >>> out = jax.jit(jaxpg.make_train(cfg))(jax.random.key(0))
      >>> out.metrics["episode_return"].shape
      (2,)
    """
    run = make_runspec(config, env, env_params, network=network, optimizer=optimizer)

    def train(key: jax.Array, hparams: HParams | None = None) -> TrainOutput:
        return _train(run, None, guard, key, hparams)

    train.num_updates = run.num_updates
    train.runspec = run
    return train


def _train(
    run: RunSpec, shardings, guard: bool, key: jax.Array, hparams: HParams | None
) -> TrainOutput:
    """The whole run; with ``shardings``, the state is pinned to them after every update."""
    hp = run.config.hparams() if hparams is None else hparams
    _check_unbatched(hp)
    state = sharding.constrain(init_state(run, key), shardings)
    out = loop.scan_updates(run, state, hp, run.num_updates, guard=guard, shardings=shardings)
    return TrainOutput(out.state, out.metrics, out.stopped_at)


def _check_unbatched(hp: HParams) -> None:
    """Refuse a batch of hyperparameters given to one run (it needs ``jax.vmap``)."""
    for name, leaf in zip(HParams._fields, hp, strict=True):
        if jnp.ndim(leaf) != 0:
            raise ValueError(
                f"hparams.{name} has shape {jnp.shape(leaf)}: one run takes scalar "
                "hyperparameters; for a batch use jax.vmap(train)(keys, hparams)"
            )


def make_sharded_train(
    config: Config,
    devices: Any = None,
    env: Any = None,
    env_params: Any = None,
    *,
    network: Any = None,
    optimizer: Any = None,
    guard: bool = False,
):
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
      env: as in :func:`make_train`.
      env_params: as in :func:`make_train`.
      network: as in :func:`make_train`.
      optimizer: as in :func:`make_train`.
      guard: as in :func:`make_train`.

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
    run = make_runspec(config, env, env_params, network=network, optimizer=optimizer)
    run = run._replace(mesh=mesh)
    abstract = jax.eval_shape(lambda k: init_state(run, k), jax.random.key(0))
    shardings = sharding.state_shardings(abstract, mesh)
    replicated = shardings.update_step

    def train(key: jax.Array, hparams: HParams | None = None) -> TrainOutput:
        return _train(run, shardings, guard, key, hparams)

    jitted = compiling.jit(train, out_shardings=TrainOutput(shardings, replicated, replicated))
    jitted.num_updates, jitted.mesh, jitted.shardings = run.num_updates, mesh, shardings
    return jitted
