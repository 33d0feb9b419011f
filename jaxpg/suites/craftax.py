"""Craftax (``craftax/Craftax-Symbolic-v1``, ``-Pixels-v1``, ``Craftax-Classic-*``) as gymnax envs.

What maps exactly: Craftax's ``done`` (``is_game_over``) is the OR of the time
limit (``timestep >= max_timesteps``) and true terminal states (death; in
Craftax also defeating the final boss; in Classic also standing in lava).
The adapter separates them: ``terminated`` is ``is_game_over`` evaluated with
the time limit disabled, ``is_truncated`` is ``timestep >=
env_params.max_steps_in_episode`` on a step that did not terminate. The time
limit is this field (passed to Craftax as ``max_timesteps``; defaults 100000
for Craftax, 10000 for Classic, Craftax's own), traced, so runs may differ in
it without recompiling. The suite's own params are ``env_params.inner``.

What does not: ``info["discount"]`` from Craftax (0 at the time limit too) is
replaced by ``1 - terminated``; Craftax's achievement entries stay in ``info``
but jaxpg does not report them. gymnax's ``step`` draws a fresh world
(``reset_env``) on every step and keeps it only where an episode ended, as
Craftax's own auto-reset env does; PureJaxRL's "optimistic resets" that avoid
that cost are not implemented. Symbolic observations are Craftax's flat
float32 vectors (map and inventory, already flattened by Craftax); pixel
observations stay ``[H, W, 3]``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from craftax.craftax_env import make_craftax_env_from_name
from flax import struct
from gymnax.environments import environment, spaces

from jaxpg.suites import raw_key

_NAMES = (
    "Craftax-Symbolic-v1",
    "Craftax-Pixels-v1",
    "Craftax-Classic-Symbolic-v1",
    "Craftax-Classic-Pixels-v1",
)
_NO_LIMIT = 2**31 - 1


@struct.dataclass
class CraftaxParams:
    """``max_steps_in_episode``: the time limit; ``inner``: Craftax's ``EnvParams``."""

    max_steps_in_episode: int
    inner: Any


class CraftaxEnv(environment.Environment):
    """A Craftax env (its ``NoAutoReset`` class) as a gymnax ``Environment``.

    ``Discrete`` actions (43 in Craftax, 17 in Classic); float32 observations.
    """

    def __init__(self, env: Any, name: str = "craftax"):
        super().__init__()
        self.env = env
        self._name = name

    @property
    def default_params(self) -> CraftaxParams:
        inner = self.env.default_params
        return CraftaxParams(max_steps_in_episode=int(inner.max_timesteps), inner=inner)

    def reset_env(self, key: jax.Array, params: CraftaxParams):
        obs, state = self.env.reset_env(raw_key(key), params.inner)
        return jnp.asarray(obs, jnp.float32), state

    def _terminated(self, state, params: CraftaxParams) -> jax.Array:
        """Craftax's game over without its time limit: a true terminal state."""
        return self.env.is_terminal(state, params.inner.replace(max_timesteps=_NO_LIMIT))

    def step_env(self, key, state, action, params: CraftaxParams):
        inner = params.inner.replace(max_timesteps=params.max_steps_in_episode)
        obs, state, reward, _, info = self.env.step_env(raw_key(key), state, action, inner)
        terminated = self._terminated(state, params)
        info = {**info, "discount": 1.0 - terminated.astype(jnp.float32)}
        return (
            jnp.asarray(obs, jnp.float32),
            state,
            jnp.asarray(reward, jnp.float32),
            terminated,
            info,
        )

    def is_truncated(self, state, params: CraftaxParams) -> jax.Array:
        """The time limit, on a step that did not terminate."""
        return jnp.logical_and(
            state.timestep >= params.max_steps_in_episode, ~self._terminated(state, params)
        )

    def observation_space(self, params: CraftaxParams) -> spaces.Box:
        space = self.env.observation_space(params.inner)
        return spaces.Box(
            jnp.asarray(space.low, jnp.float32),
            jnp.asarray(space.high, jnp.float32),
            tuple(space.shape),
            jnp.float32,
        )

    def action_space(self, params: CraftaxParams | None = None) -> spaces.Discrete:
        return spaces.Discrete(self.num_actions)

    @property
    def num_actions(self) -> int:
        return int(self.env.num_actions)

    @property
    def name(self) -> str:
        return self._name


def names() -> tuple[str, ...]:
    """The four Craftax environments (Craftax and Classic, symbolic and pixels)."""
    return _NAMES


def make(name: str) -> tuple[CraftaxEnv, CraftaxParams]:
    """Build Craftax's no-auto-reset env ``name`` as a gymnax env.

    Returns:
      ``(env, env.default_params)``.
    """
    if name not in _NAMES:
        raise ValueError(f"craftax env {name!r} is unknown; allowed: {', '.join(_NAMES)}")
    env = CraftaxEnv(make_craftax_env_from_name(name, auto_reset=False), f"craftax/{name}")
    return env, env.default_params
