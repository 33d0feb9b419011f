"""A run's set-up: what is fixed before tracing (:class:`RunSpec`) and what evolves
(:class:`TrainState`).

:func:`make_runspec` resolves a :class:`~jaxpg.config.Config` plus the optional
user parts (environment, network, optimizer) into one record that every compiled
function takes as a static argument; :func:`init_state` draws a run's initial
state from a key. Nothing here traces or compiles.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp

from jaxpg import envs, estimators, networks, normalization, optimizers, rollout
from jaxpg.config import Config


class RunSpec(NamedTuple):
    """The static parts of a run.

    Attributes:
      config: the validated :class:`Config`.
      env, env_params: the environment (protocol of :mod:`jaxpg.envs`) and its params.
      spec: the environment's :class:`~jaxpg.envs.EnvSpec`.
      model: the networks (:class:`~jaxpg.networks.Model`, or
        :class:`~jaxpg.networks.RecurrentModel`).
      optimizer: :class:`~jaxpg.optimizers.Optimizer`, built from ``HParams`` each update.
      horizon: T, steps per env in one rollout.
      num_updates: updates in the run.
      steps_per_update: optimizer steps per update.
      mesh: with a mesh (:func:`jaxpg.sharding.env_mesh`), PPO's minibatches are
        split over its ``"envs"`` axis (data-parallel gradient steps); ``None``:
        one device, nothing pinned.
    """

    config: Config
    env: Any
    env_params: Any
    spec: envs.EnvSpec
    model: networks.Model | networks.RecurrentModel
    optimizer: optimizers.Optimizer
    horizon: int
    num_updates: int
    steps_per_update: int
    mesh: Any = None

    @property
    def estimator(self) -> estimators.Estimator:
        return estimators.REGISTRY[self.config.estimator]

    @property
    def recurrent(self) -> bool:
        return isinstance(self.model, networks.RecurrentModel)


class TrainState(flax.struct.PyTreeNode):
    """Everything that evolves during training."""

    params: Any  # the Model's parameters
    opt_state: Any
    env: rollout.EnvCarry
    key: jax.Array
    update_step: jax.Array  # int32, updates done so far
    env_steps: jax.Array  # float32, env steps taken so far (masked steps excluded)
    last_return: jax.Array  # float32, mean return of the last finished episodes (NaN if none)
    last_length: jax.Array  # float32, mean length of the last finished episodes (NaN if none)
    # Running statistics (jaxpg.normalization); None when the config leaves them off.
    obs_norm: normalization.RunningStats | None = None
    reward_norm: normalization.RewardNorm | None = None


def make_runspec(
    config: Config,
    env: Any = None,
    env_params: Any = None,
    *,
    network: Any = None,
    optimizer: Any = None,
) -> RunSpec:
    """Resolve ``config`` and the optional user parts into a :class:`RunSpec`.

    Args:
      config: the run.
      env: an environment instance (or id) overriding ``config.env``.
      env_params: params for ``env``.
      network: ``None`` (the built-in networks ``config`` names) or anything
        :func:`jaxpg.networks.as_model` accepts.
      optimizer: ``None`` (``config.optimizer``), a factory
        ``learning_rate -> optax.GradientTransformation``, or a transformation
        (see :mod:`jaxpg.optimizers`).

    Returns:
      The :class:`RunSpec`: ``horizon`` is ``config.num_steps`` (segments) or
      the env's episode limit (episodes), ``num_updates`` is
      ``total_timesteps // (num_envs * horizon)``.

    Raises:
      ValueError: the budget is below one update, episodes cannot be bounded,
        ``num_minibatches`` does not divide the batch (the envs, for a recurrent
        network), or a user's ``network`` does not fit the action space
        (:func:`jaxpg.networks.check_output`).
    """
    env_obj, env_params = envs.make_env(config.env if env is None else env, env_params)
    spec = envs.env_spec(env_obj, env_params)
    if config.rollout_mode == "episodes":
        horizon = spec.max_episode_steps
        if horizon < 1:
            raise ValueError(
                "rollout='episodes' needs env_params.max_steps_in_episode >= 1 to bound "
                "an episode; this environment has none"
            )
    else:
        horizon = config.num_steps
    num_updates = config.total_timesteps // (config.num_envs * horizon)
    if num_updates < 1:
        raise ValueError(
            f"Config.total_timesteps={config.total_timesteps} is too small: one update "
            f"takes num_envs*T = {config.num_envs}*{horizon} = {config.num_envs * horizon} steps"
        )
    if network is None:
        model = networks.from_config(config, spec)  # built to fit spec
    else:
        model = networks.as_model(network)
        networks.check_output(model, spec)
    kind = estimators.REGISTRY[config.estimator].update
    steps = kind.optimizer_steps(config)
    kind.check_run(config, horizon, isinstance(model, networks.RecurrentModel))
    opt = optimizers.make_optimizer(config, num_updates, steps, optimizer)
    return RunSpec(config, env_obj, env_params, spec, model, opt, horizon, num_updates, steps)


def init_state(run: RunSpec, key: jax.Array) -> TrainState:
    """Initialise parameters, optimizer state and environments from ``key``.

    Args:
      run: the run's set-up.
      key: PRNG key; split into network, environment and training keys.

    Returns:
      A :class:`TrainState` with ``update_step`` 0 and ``num_envs`` fresh envs.

    Example:
      >>> import jax
      >>> run = make_runspec(Config(num_envs=2, num_steps=8, num_minibatches=2))
      >>> int(init_state(run, jax.random.key(0)).env.obs.shape[0])
      2
    """
    k_net, k_env, k_state = jax.random.split(key, 3)
    params = run.model.init(k_net, jnp.zeros((1, *run.spec.obs_shape), jnp.float32))
    tx = run.optimizer.build(run.config.hparams())
    return TrainState(
        params=params,
        opt_state=tx.init(params),
        env=rollout.reset_envs(k_env, run.env, run.env_params, run.config.num_envs)._replace(
            hidden=initial_hidden(run)
        ),
        key=k_state,
        update_step=jnp.zeros((), jnp.int32),
        env_steps=jnp.zeros((), jnp.float32),
        last_return=jnp.full((), jnp.nan, jnp.float32),
        last_length=jnp.full((), jnp.nan, jnp.float32),
        obs_norm=(
            normalization.RunningStats.zeros(run.spec.obs_shape)
            if run.config.normalize_obs
            else None
        ),
        reward_norm=(
            normalization.init_reward_norm(run.config.num_envs)
            if run.config.normalize_rewards
            else None
        ),
    )


def initial_hidden(run: RunSpec) -> Any:
    """A recurrent model's zero state for ``num_envs`` envs; ``None`` for a feed-forward one.

    Args:
      run: the run's set-up.

    Returns:
      ``run.model.initial_state(num_envs)`` (``[num_envs, width]`` float32 for
      the built-in GRU), or ``None``.
    """
    return run.model.initial_state(run.config.num_envs) if run.recurrent else None
