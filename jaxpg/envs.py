"""gymnax environments: construction, action spaces, and one auto-resetting step.

Conventions:

* Any gymnax >= 1.0 environment, by id or as an ``Environment`` instance with
  its params. Observations are flattened to float32 vectors ``[obs_size]``.
* :func:`step` keeps ``terminated`` (a true terminal state, future value 0) and
  ``truncated`` (time limit) apart and returns the true final observation of
  an episode that just ended (``final_obs``), while ``obs`` is already the
  first observation of the next episode (gymnax auto-resets).
* Episode statistics (running return and length) are carried per env and
  emitted on the step that ends an episode.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from gymnax.environments import environment, spaces

Environment = environment.Environment


class EnvSpec(NamedTuple):
    """Static facts about an environment that shape the networks."""

    obs_size: int
    discrete: bool
    action_dim: int  # number of actions (discrete) or action vector size
    action_low: Any  # Box bounds (continuous), else None
    action_high: Any
    max_episode_steps: int


def make_env(env: str | Environment, env_params: Any = None) -> tuple[Environment, Any]:
    """Build a gymnax environment and its params from an id or an instance.

    Args:
      env: a gymnax id such as ``"CartPole-v1"``, a suite id ``"suite/name"`` (see
        :mod:`jaxpg.suites`), or an ``Environment``.
      env_params: params for the environment; defaults to its ``default_params``.

    Returns:
      ``(env, env_params)``.
    """
    if isinstance(env, str) and "/" in env:  # "suite/name": Brax, Craftax, Jumanji, Navix
        from jaxpg import suites

        env_obj, default = suites.make(env)
        return env_obj, default if env_params is None else env_params
    if isinstance(env, str):
        import gymnax

        if env not in gymnax.registered_envs:
            raise ValueError(
                f"env={env!r} is not a gymnax environment; allowed: "
                f"{', '.join(gymnax.registered_envs)}"
            )
        env_obj, default = gymnax.make(env)
        return env_obj, default if env_params is None else env_params
    if not isinstance(env, Environment):
        raise ValueError(
            f"env must be a gymnax id or a gymnax Environment, got {type(env).__name__}"
        )
    return env, env.default_params if env_params is None else env_params


def env_spec(env: Environment, env_params: Any) -> EnvSpec:
    """Read the observation size, action space and episode limit of ``env``."""
    obs_shape = env.observation_space(env_params).shape
    obs_size = 1
    for d in obs_shape:
        obs_size *= int(d)
    space = env.action_space(env_params)
    max_steps = int(getattr(env_params, "max_steps_in_episode", 0) or 0)
    if isinstance(space, spaces.Discrete):
        return EnvSpec(obs_size, True, int(space.n), None, None, max_steps)
    if isinstance(space, spaces.Box):
        shape = tuple(space.shape) or (1,)
        size = 1
        for d in shape:
            size *= int(d)
        low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), (size,))
        high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), (size,))
        return EnvSpec(obs_size, False, size, low, high, max_steps)
    raise ValueError(
        f"action space {type(space).__name__} is not supported; allowed: Discrete, Box"
    )


def flatten_obs(obs: jax.Array) -> jax.Array:
    """``[..., *obs_shape]`` of any dtype → float32 ``[obs_size]`` (single env)."""
    return jnp.reshape(obs, (-1,)).astype(jnp.float32)


class EpisodeStats(NamedTuple):
    """Running per-env return and length of the current episode."""

    ret: jax.Array  # [B] float32
    length: jax.Array  # [B] int32

    @classmethod
    def zeros(cls, num_envs: int) -> EpisodeStats:
        return cls(jnp.zeros((num_envs,), jnp.float32), jnp.zeros((num_envs,), jnp.int32))


class StepOut(NamedTuple):
    """One env step. ``final_obs`` is s'_t (true next obs); ``obs`` may be a reset."""

    obs: jax.Array
    state: Any
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array


def env_action(spec: EnvSpec, action: jax.Array) -> jax.Array:
    """Map a policy action to what the env accepts (clip Gaussian samples to the Box)."""
    if spec.discrete:
        return action
    return jnp.clip(action, spec.action_low, spec.action_high)


def _finish_step(spec: EnvSpec, obs, state, reward, terminated, truncated, final_obs):
    terminated = jnp.asarray(terminated, bool)
    truncated = jnp.logical_and(jnp.asarray(truncated, bool), ~terminated)
    return StepOut(
        flatten_obs(obs),
        state,
        jnp.asarray(reward, jnp.float32),
        terminated,
        truncated,
        flatten_obs(final_obs),
    )


def _env_act(env: Environment, env_params: Any, spec: EnvSpec, action: jax.Array):
    act = env_action(spec, action)
    if not spec.discrete and act.shape != tuple(env.action_space(env_params).shape):
        act = act.reshape(env.action_space(env_params).shape)
    return act


def step(
    key: jax.Array,
    env: Environment,
    env_params: Any,
    spec: EnvSpec,
    state: Any,
    action: jax.Array,
) -> StepOut:
    """Step one environment with gymnax's auto-reset, keeping s'_t and both flags."""
    act = _env_act(env, env_params, spec, action)
    obs, state, reward, terminated, truncated, info = env.step(key, state, act, env_params)
    return _finish_step(spec, obs, state, reward, terminated, truncated, info["final_observation"])


def has_standard_step(env: Environment) -> bool:
    """True when ``env`` uses gymnax's own ``step`` and ``is_truncated`` (no override),
    so :func:`step_with_reset` reproduces its auto-reset exactly."""
    cls = type(env)
    return cls.step is Environment.step and cls.is_truncated is Environment.is_truncated


def reset_raw(key: jax.Array, env: Environment, env_params: Any) -> tuple[Any, Any]:
    """``env.reset_env``: the reset observation (unflattened) and state, as ``step`` draws them."""
    return env.reset_env(key, env_params)


def step_with_reset(
    key: jax.Array,
    env: Environment,
    env_params: Any,
    spec: EnvSpec,
    state: Any,
    action: jax.Array,
    reset_obs: Any,
    reset_state: Any,
) -> StepOut:
    """gymnax's ``step`` with the auto-reset's obs/state given (drawn ahead of time).

    The same transition as ``env.step`` (``step_env``, ``is_truncated``, then the
    reset selected where the episode ended), but the reset comes from
    :func:`reset_raw` evaluated beforehand, so a rollout runs every reset of its
    ``T × B`` steps in one vectorized call instead of a reset (and its RNG) inside
    each sequential step. Only for envs with :func:`has_standard_step`.
    """
    act = _env_act(env, env_params, spec, action)
    obs_st, state_st, reward, terminated, _ = env.step_env(key, state, act, env_params)
    truncated = env.is_truncated(state_st, env_params)
    done = jnp.logical_or(terminated, truncated)
    pick = lambda r, s: jax.lax.select(done, r, s)  # noqa: E731
    new_state = jax.tree.map(pick, reset_state, state_st)
    obs = jax.tree.map(pick, reset_obs, obs_st)
    return _finish_step(spec, obs, new_state, reward, terminated, truncated, obs_st)


def reset(key: jax.Array, env: Environment, env_params: Any) -> tuple[jax.Array, Any]:
    """Reset one environment; returns (flat obs, state)."""
    obs, state = env.reset(key, env_params)
    return flatten_obs(obs), state
