"""Brax continuous control (``brax/ant``, ``brax/inverted_pendulum``) as gymnax environments.

What maps exactly: the raw Brax env is used, without Brax's ``EpisodeWrapper``
and ``AutoResetWrapper``; Brax's ``state.done`` is a true termination (the
robot fell, the pendulum tipped over). The time limit is counted here:
``is_truncated`` is ``time >= env_params.max_steps_in_episode`` (1000 by
default, Brax's ``episode_length`` in its training scripts) and never holds on
a step that terminated. ``env_params.max_steps_in_episode`` is traced, so it
may differ per run without recompiling.

What does not: Brax's ``action_repeat`` (its wrapper's, not the env's
``n_frames``) is not applied (1, as in Brax's own PPO defaults for most tasks);
Brax's ``metrics`` and ``info`` stay in the state but are not reported; the
step key is unused (Brax steps are deterministic). Dict observations
(``obs_mode``) are not supported.
"""

from __future__ import annotations

from typing import Any

import brax.envs
import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from jaxpg.suites import raw_key


@struct.dataclass
class BraxState:
    """The Brax ``State`` and the steps since reset."""

    inner: Any
    time: jax.Array


@struct.dataclass
class BraxParams:
    """``max_steps_in_episode``: the time limit (truncation), in env steps."""

    max_steps_in_episode: int = 1000


class BraxEnv(environment.Environment):
    """A raw Brax env as a gymnax ``Environment``: ``Box(-1, 1, (action_size,))`` actions,
    float32 ``[observation_size]`` observations, ``done`` as termination, a step-count
    time limit as truncation."""

    def __init__(self, env: Any, name: str = "brax", max_steps_in_episode: int = 1000):
        super().__init__()
        if not isinstance(env.observation_size, int):
            raise ValueError(
                f"{name}: Brax dict observations are not supported; allowed: array observations"
            )
        self.env = env
        self._name = name
        self._max_steps = max_steps_in_episode

    @property
    def default_params(self) -> BraxParams:
        return BraxParams(max_steps_in_episode=self._max_steps)

    def reset_env(self, key: jax.Array, params: BraxParams) -> tuple[jax.Array, BraxState]:
        inner = self.env.reset(raw_key(key))
        return self._obs(inner), BraxState(inner, jnp.zeros((), jnp.int32))

    def step_env(self, key, state: BraxState, action, params: BraxParams):
        del key  # Brax dynamics are deterministic
        inner = self.env.step(state.inner, jnp.asarray(action, jnp.float32))
        terminated = inner.done > 0.5
        reward = jnp.asarray(inner.reward, jnp.float32)
        return self._obs(inner), BraxState(inner, state.time + 1), reward, terminated, {}

    def is_truncated(self, state: BraxState, params: BraxParams) -> jax.Array:
        """The time limit, on a step that did not terminate."""
        return jnp.logical_and(state.time >= params.max_steps_in_episode, ~(state.inner.done > 0.5))

    def _obs(self, inner) -> jax.Array:
        return jnp.asarray(inner.obs, jnp.float32)

    def observation_space(self, params: BraxParams) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (self.env.observation_size,), jnp.float32)

    def action_space(self, params: BraxParams | None = None) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, (self.env.action_size,), jnp.float32)

    @property
    def name(self) -> str:
        return self._name


def names() -> tuple[str, ...]:
    """Brax's registered environment names."""
    return tuple(sorted(brax.envs._envs))  # Brax exposes no public listing


def make(name: str, max_steps_in_episode: int = 1000, **kwargs: Any) -> tuple[BraxEnv, BraxParams]:
    """Build ``brax.envs.get_environment(name, **kwargs)`` (e.g. ``backend=``) as a gymnax env.

    Returns:
      ``(env, env.default_params)``.
    """
    if name not in names():
        raise ValueError(f"brax env {name!r} is unknown; allowed: {', '.join(names())}")
    env = BraxEnv(brax.envs.get_environment(name, **kwargs), f"brax/{name}", max_steps_in_episode)
    return env, env.default_params
