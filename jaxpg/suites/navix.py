"""Navix grid worlds (``navix/Navix-DoorKey-5x5-v0``) as gymnax environments.

What maps exactly: Navix's ``Timestep.step_type`` is 0 (transition), 1
(truncation: ``t >= max_steps``, the time limit) or 2 (termination: the task's
``termination_fn``, which wins when both happen on one step). The adapter
reports ``terminated = step_type == 2`` and ``is_truncated = step_type == 1``,
and steps with Navix's ``_step`` (Navix's ``step`` auto-resets on the *next*
call, which gymnax's ``step`` does instead).

What does not: the step key that gymnax passes is not used; Navix draws its
randomness (random starts, moving obstacles) from a key carried in its own
state, seeded at reset. The time limit is Navix's static ``max_steps``
(``navix.make``'s default, 100 steps, unless ``make(name, max_steps=...)``);
``env_params.max_steps_in_episode`` reports it but changing that field does not
move the limit. Navix's per-step time penalty (``penality_coeff``) is kept as
Navix computes it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import navix
from flax import struct
from gymnax.environments import environment, spaces

from jaxpg.suites import raw_key


@struct.dataclass
class NavixState:
    """The Navix ``Timestep`` (state, step type, ``t``) and the steps since reset."""

    timestep: Any
    time: jax.Array


@struct.dataclass
class NavixParams:
    """``max_steps_in_episode`` reports Navix's static time limit (read-only in effect)."""

    max_steps_in_episode: int = 100


class NavixEnv(environment.Environment):
    """A Navix environment as a gymnax ``Environment`` without auto-reset in ``step_env``.

    Observations are Navix's (symbolic ``[H, W, 3]`` by default) cast to float32.
    Actions are ``Discrete(len(action_set))``.
    """

    def __init__(self, env: Any, name: str = "navix"):
        super().__init__()
        self.env = env
        self._name = name

    @property
    def default_params(self) -> NavixParams:
        return NavixParams(max_steps_in_episode=int(self.env.max_steps))

    def reset_env(self, key: jax.Array, params: NavixParams) -> tuple[jax.Array, NavixState]:
        ts = self.env.reset(raw_key(key))
        return self._obs(ts), NavixState(ts, jnp.zeros((), jnp.int32))

    def step_env(self, key, state: NavixState, action, params: NavixParams):
        del key  # Navix steps with the key carried in its state
        ts = self.env._step(state.timestep, jnp.asarray(action, jnp.int32))
        ts = ts.replace(
            reward=jnp.asarray(ts.reward, jnp.float32),
            step_type=jnp.asarray(ts.step_type, jnp.int32),
            t=jnp.asarray(ts.t, state.timestep.t.dtype),
        )
        terminated = ts.step_type == navix.environments.environment.StepType.TERMINATION
        return self._obs(ts), NavixState(ts, state.time + 1), ts.reward, terminated, {}

    def is_truncated(self, state: NavixState, params: NavixParams) -> jax.Array:
        """Navix's own time limit: ``step_type == TRUNCATION`` (never with a termination)."""
        return state.timestep.step_type == navix.environments.environment.StepType.TRUNCATION

    def _obs(self, ts) -> jax.Array:
        return jnp.asarray(ts.observation, jnp.float32)

    def observation_space(self, params: NavixParams) -> spaces.Box:
        space = self.env.observation_space
        return spaces.Box(
            float(space.minimum), float(space.maximum), tuple(space.shape), jnp.float32
        )

    def action_space(self, params: NavixParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.num_actions)

    @property
    def num_actions(self) -> int:
        return len(self.env.action_set)

    @property
    def name(self) -> str:
        return self._name


def names() -> tuple[str, ...]:
    """Navix's registered environment names."""
    return tuple(navix.registry())


def make(name: str, **kwargs: Any) -> tuple[NavixEnv, NavixParams]:
    """Build ``navix.make(name, **kwargs)`` (e.g. ``max_steps=``) as a gymnax env.

    Returns:
      ``(env, env.default_params)``.
    """
    if name not in navix.registry():
        raise ValueError(f"navix env {name!r} is unknown; allowed: {', '.join(names())}")
    env = NavixEnv(navix.make(name, **kwargs), name=f"navix/{name}")
    return env, env.default_params
