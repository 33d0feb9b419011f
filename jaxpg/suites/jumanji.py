"""Jumanji tasks (``jumanji/Snake-v1``, ``jumanji/Maze-v0``, …) as gymnax environments.

What maps exactly: a Jumanji ``TimeStep`` with ``step_type == LAST`` and
``discount == 0`` is a termination, ``LAST`` with ``discount != 0`` a
truncation. But most Jumanji tasks (Snake, Maze, PacMan, SlidingTilePuzzle,
RubiksCube, Tetris, …) end their time limit with ``termination`` (discount 0),
so reading the ``TimeStep`` alone would turn every time limit into a terminal
state. For a task whose constructor takes ``time_limit`` the adapter therefore
builds it with the limit switched off (``2**31 - 1``) and enforces the limit
itself: ``is_truncated`` is ``time >= env_params.max_steps_in_episode`` (the
task's own default limit, traced) on a step that did not terminate; every
``LAST`` with discount 0 is then a true terminal state. Tasks whose rewards
depend on the limit (SearchAndRescue) keep their own limit; there a ``LAST``
step at ``time >= time_limit`` is reported as a truncation, which is wrong
only when a true termination falls on that very step. Tasks without a time
limit get ``max_steps_in_episode = 0`` (none).

Observations: the (nested) ``Observation`` is flattened into one float32
vector ``[obs_size]``: ``jax.tree.leaves`` order (a NamedTuple's field order,
a dict's sorted keys), each leaf raveled in C order and cast to float32;
``env.obs_layout`` lists ``(path, shape)`` in that order. Lost: the spatial
shape of grid fields (a CNN cannot see them as images), integer/boolean
types (step counts enter unscaled), and action masks, which are kept as 0/1
input features but NOT enforced: the policy may pick an invalid action, with
whatever consequence the task gives it (in Snake, an invalid move ends the
episode). Actions: ``DiscreteArray`` → ``Discrete``, ``BoundedArray`` →
``Box``; ``MultiDiscreteArray`` tasks (Tetris, BinPack, RubiksCube, …) are
refused with a ValueError. The step key is unused (Jumanji carries its key in
its state).
"""

from __future__ import annotations

import inspect
from typing import Any

import jax
import jax.numpy as jnp
import jumanji
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces
from jumanji import specs
from jumanji.types import StepType

from jaxpg.suites import raw_key

_NO_LIMIT = 2**31 - 1
# Tasks whose rewards or dynamics read time_limit, so it cannot be switched off.
_KEEP_OWN_LIMIT = frozenset({"SearchAndRescue"})


@struct.dataclass
class JumanjiState:
    """Jumanji's state, steps since reset, and the last step's end flags."""

    inner: Any
    time: jax.Array
    terminated: jax.Array
    truncated: jax.Array


@struct.dataclass
class JumanjiParams:
    """``max_steps_in_episode``: the time limit enforced here (0: none)."""

    max_steps_in_episode: int = 0


def _leaf_paths(tree) -> list[tuple[str, tuple[int, ...]]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [(jax.tree_util.keystr(p), tuple(np.shape(x))) for p, x in flat]


def _flatten(obs) -> jax.Array:
    leaves = [jnp.ravel(jnp.asarray(x)).astype(jnp.float32) for x in jax.tree.leaves(obs)]
    return jnp.concatenate(leaves)


class JumanjiEnv(environment.Environment):
    """A Jumanji ``Environment`` as a gymnax ``Environment`` with flat float32 observations.

    Args:
      env: the Jumanji env.
      name: the id reported by ``name``.
      max_steps: the time limit the adapter enforces (0: none).
      own_limit: the Jumanji env's own time limit that it reports as a termination
        (``None`` when it was switched off or it has none).
    """

    def __init__(self, env: Any, name: str, max_steps: int, own_limit: int | None):
        super().__init__()
        action_spec = env.action_spec
        if isinstance(action_spec, specs.MultiDiscreteArray):
            raise ValueError(
                f"{name}: MultiDiscrete actions are not supported; allowed: Discrete or Box tasks"
            )
        if not isinstance(action_spec, specs.BoundedArray):
            raise ValueError(
                f"{name}: action spec {type(action_spec).__name__} is not supported; "
                "allowed: DiscreteArray, BoundedArray"
            )
        self.env = env
        self._name = name
        self._max_steps = int(max_steps)
        self._own_limit = own_limit
        example = env.observation_spec.generate_value()
        self.obs_layout = _leaf_paths(example)
        self._obs_size = int(sum(np.prod(s, dtype=int) for _, s in self.obs_layout))

    @property
    def default_params(self) -> JumanjiParams:
        return JumanjiParams(max_steps_in_episode=self._max_steps)

    def reset_env(self, key: jax.Array, params: JumanjiParams):
        inner, ts = self.env.reset(raw_key(key))
        false = jnp.zeros((), bool)
        return _flatten(ts.observation), JumanjiState(inner, jnp.zeros((), jnp.int32), false, false)

    def step_env(self, key, state: JumanjiState, action, params: JumanjiParams):
        del key  # Jumanji steps with the key carried in its state
        spec = self.env.action_spec
        inner, ts = self.env.step(state.inner, jnp.asarray(action, spec.dtype))
        time = state.time + 1
        last = ts.step_type == StepType.LAST
        terminated = jnp.logical_and(last, ts.discount == 0)
        suite_truncated = jnp.logical_and(last, ts.discount != 0)
        if self._own_limit is not None:  # its time limit says "termination": undo that
            at_limit = jnp.logical_and(last, time >= self._own_limit)
            terminated = jnp.logical_and(terminated, ~at_limit)
            suite_truncated = jnp.logical_or(suite_truncated, at_limit)
        limit = params.max_steps_in_episode
        at_ours = jnp.logical_and(limit > 0, time >= limit)
        truncated = jnp.logical_and(jnp.logical_or(suite_truncated, at_ours), ~terminated)
        new = JumanjiState(inner, time, terminated, truncated)
        reward = jnp.asarray(ts.reward, jnp.float32)
        return _flatten(ts.observation), new, reward, terminated, {}

    def is_truncated(self, state: JumanjiState, params: JumanjiParams) -> jax.Array:
        """The time limit (the adapter's or the task's), on a step that did not terminate."""
        return state.truncated

    def observation_space(self, params: JumanjiParams) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (self._obs_size,), jnp.float32)

    def action_space(self, params: JumanjiParams | None = None):
        spec = self.env.action_spec
        if isinstance(spec, specs.DiscreteArray):
            return spaces.Discrete(int(spec.num_values))
        low = np.broadcast_to(np.asarray(spec.minimum, np.float32), spec.shape)
        high = np.broadcast_to(np.asarray(spec.maximum, np.float32), spec.shape)
        return spaces.Box(jnp.asarray(low), jnp.asarray(high), tuple(spec.shape), jnp.float32)

    @property
    def num_actions(self) -> int:
        spec = self.env.action_spec
        if isinstance(spec, specs.DiscreteArray):
            return int(spec.num_values)
        return int(np.prod(spec.shape, dtype=int))

    @property
    def name(self) -> str:
        return self._name


def names() -> tuple[str, ...]:
    """Jumanji's registered ids (MultiDiscrete-action tasks among them are refused by make)."""
    return tuple(sorted(jumanji.registered_environments()))


def make(name: str, **kwargs: Any) -> tuple[JumanjiEnv, JumanjiParams]:
    """Build ``jumanji.make(name, **kwargs)`` as a gymnax env (see the module doc for limits).

    Returns:
      ``(env, env.default_params)``.
    """
    if name not in jumanji.registered_environments():
        raise ValueError(f"jumanji env {name!r} is unknown; allowed: {', '.join(names())}")
    env = jumanji.make(name, **kwargs)
    limit = getattr(env, "time_limit", None)
    if limit is None:
        return _wrap(env, name, 0, None)
    accepts = "time_limit" in inspect.signature(type(env).__init__).parameters
    if accepts and type(env).__name__ not in _KEEP_OWN_LIMIT:
        env = jumanji.make(name, **{**kwargs, "time_limit": _NO_LIMIT})
        return _wrap(env, name, int(limit), None)
    return _wrap(env, name, int(limit), int(limit))


def _wrap(env, name, max_steps, own_limit):
    wrapped = JumanjiEnv(env, f"jumanji/{name}", max_steps, own_limit)
    return wrapped, wrapped.default_params
