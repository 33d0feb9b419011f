"""Environments: the adapter protocol, a registry of names, and one auto-resetting step.

The protocol is gymnax's (>= 1.0) ``Environment`` interface, which every suite
adapter implements:

* ``reset(key, params) -> (obs, state)``;
* ``step(key, state, action, params) -> (obs, state, reward, terminated,
  truncated, info)``, auto-resetting, with ``info["final_observation"]`` the
  true last observation of an episode that just ended (``obs`` is then already
  the next episode's first);
* ``observation_space(params)``, ``action_space(params)`` (``Discrete`` or
  ``Box``), ``default_params`` (``max_steps_in_episode`` bounds an episode).

Conventions:

* :func:`step` keeps ``terminated`` (a true terminal state, future value 0) and
  ``truncated`` (time limit) apart.
* Observations keep their shape (``[H, W, C]`` images stay images) and become
  float32; the networks flatten them where they want vectors.
* Ids: a gymnax id (``"CartPole-v1"``), a name given to :func:`register`, or a
  name that an installed package offers through the ``jaxpg.envs`` entry-point
  group (``name = "module:factory"``).
* An environment whose ``step`` returns gymnax 0.x's five values ``(obs, state,
  reward, done, info)`` is wrapped by :class:`LegacyStep`: without a separate
  truncation flag, a time limit looks like a termination (no bootstrap there).
* Episode statistics (running return and length) are carried per env and
  emitted on the step that ends an episode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from gymnax.environments import environment

Environment = environment.Environment

#: ``name -> factory``; a factory returns an environment or ``(env, env_params)``.
_REGISTRY: dict[str, Callable[[], Any]] = {}
_ENTRY_POINTS_LOADED = False


def register(name: str, factory: Callable[[], Any], *, overwrite: bool = False) -> None:
    """Make ``name`` an environment id usable everywhere an id is (Config, CLI, sweeps).

    Args:
      name: the id; must not be a gymnax id or contain ``/`` (reserved for suites).
      factory: ``factory() -> env`` or ``-> (env, env_params)``; called each time the
        id is built, so it should be cheap and deterministic.
      overwrite: replace an existing registration instead of raising.

    Raises:
      ValueError: the name is taken, reserved or not a string, or ``factory`` is
        not callable.

    Example:
      >>> import gymnax
      >>> register("MyCartPole", lambda: gymnax.make("CartPole-v1"), overwrite=True)
      >>> env, params = make_env("MyCartPole")
      >>> type(env).__name__
      'CartPole'
    """
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"register: name={name!r} must be a non-empty string without '/'")
    if name in _gymnax_ids():
        raise ValueError(f"register: name={name!r} is a gymnax id; choose another name")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"register: name={name!r} is already registered (pass overwrite=True)")
    if not callable(factory):
        raise ValueError(f"register: factory for {name!r} must be callable")
    _REGISTRY[name] = factory


def registered() -> tuple[str, ...]:
    """The names given to :func:`register` (and by installed entry points)."""
    _load_entry_points()
    return tuple(sorted(_REGISTRY))


def _gymnax_ids() -> tuple[str, ...]:
    import gymnax

    return tuple(gymnax.registered_envs)


def _load_entry_points() -> None:
    """Register the factories installed packages offer in the ``jaxpg.envs`` group."""
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="jaxpg.envs"):
        if ep.name not in _REGISTRY:
            _REGISTRY[ep.name] = lambda ep=ep: ep.load()()


def import_module(name: str) -> None:
    """Import ``name`` (which registers environments), from the working directory too.

    The module is imported normally first; only when the module itself is not
    found is the working directory put at the front of ``sys.path`` (as
    ``python -m`` would) and the import tried again.

    Args:
      name: a dotted module name (``Config.env_module``).

    Raises:
      ValueError: naming ``Config.env_module`` and the import error.
    """
    import importlib
    import os
    import sys

    if not isinstance(name, str) or not name:
        raise ValueError(f"Config.env_module={name!r} is invalid: must be a module name")
    try:
        importlib.import_module(name)
        return
    except ModuleNotFoundError as exc:
        if exc.name != name.split(".")[0] or os.getcwd() in sys.path:
            raise ValueError(f"Config.env_module={name!r} is invalid: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any failure of the user's module
        raise ValueError(f"Config.env_module={name!r} failed to import: {exc}") from None
    sys.path.insert(0, os.getcwd())  # as `python -m` would have it
    try:
        importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"Config.env_module={name!r} is invalid: {exc}") from None


def check_id(env_id: str) -> None:
    """Raise a one-line ``ValueError`` unless ``env_id`` names a known environment.

    Known: a registered name (including entry points), a gymnax id, or a
    ``"suite/name"`` of :mod:`jaxpg.suites` (the suite is not imported here).

    Args:
      env_id: the id to check (``Config.env``).

    Raises:
      ValueError: naming ``Config.env`` and listing the allowed ids.
    """
    if not isinstance(env_id, str):
        raise ValueError(f"Config.env={env_id!r} is invalid: must be an environment id string")
    if env_id in _REGISTRY or env_id in _gymnax_ids():
        return
    if "/" in env_id:  # "suite/name": the suite is imported only when the env is built
        from jaxpg import suites

        if suites.is_suite_id(env_id):
            return
    _load_entry_points()
    if env_id in _REGISTRY:
        return
    names = ", ".join((*_gymnax_ids(), *sorted(_REGISTRY)))
    raise ValueError(
        f"Config.env={env_id!r} is invalid: allowed: {names}, suite/name "
        "(jaxpg.suites.SUITES), or a name given to jaxpg.envs.register"
    )


class EnvSpec(NamedTuple):
    """Static facts about an environment that shape the networks."""

    obs_shape: tuple[int, ...]  # one observation's shape (float32)
    discrete: bool
    action_dim: int  # number of actions (discrete) or action vector size
    action_low: Any  # Box bounds (continuous), else None
    action_high: Any
    max_episode_steps: int

    @property
    def obs_size(self) -> int:
        """Number of scalars in one observation."""
        size = 1
        for d in self.obs_shape:
            size *= int(d)
        return size


def _as_env(made: Any, env_params: Any) -> tuple[Any, Any]:
    env, params = made if isinstance(made, tuple) else (made, None)
    params = params if env_params is None else env_params
    return adapt(env, params)


def make_env(env: str | Any, env_params: Any = None) -> tuple[Any, Any]:
    """Build an environment and its params from an id or an instance.

    Args:
      env: an id (see the module docstring; ``"suite/name"`` for Brax, Craftax,
        Jumanji and Navix, see :mod:`jaxpg.suites`) or an environment instance that
        follows the protocol (gymnax 0.x's five-value ``step`` is wrapped).
      env_params: params for the environment; defaults to its ``default_params``.

    Returns:
      ``(env, env_params)``.

    Raises:
      ValueError: an unknown id, or an object that is not an environment.
    """
    if isinstance(env, str) and "/" in env:  # "suite/name": Brax, Craftax, Jumanji, Navix
        from jaxpg import suites

        env_obj, default = suites.make(env)
        return env_obj, default if env_params is None else env_params
    if isinstance(env, str):
        check_id(env)
        if env in _REGISTRY:
            return _as_env(_REGISTRY[env](), env_params)
        import gymnax

        return _as_env(gymnax.make(env), env_params)
    return adapt(env, env_params)


def _is_env(env: Any) -> bool:
    return all(hasattr(env, a) for a in ("reset", "step", "observation_space", "action_space"))


def adapt(env: Any, env_params: Any = None) -> tuple[Any, Any]:
    """Check ``env`` against the protocol; wrap a five-value ``step`` in :class:`LegacyStep`.

    Args:
      env: an environment instance.
      env_params: its params; ``None`` takes ``env.default_params``.

    Returns:
      ``(env, env_params)``: ``env`` itself or wrapped in :class:`LegacyStep`,
      ``env_params`` defaulted to ``env.default_params``.

    Raises:
      ValueError: ``env`` lacks ``reset``, ``step``, ``observation_space`` or
        ``action_space``.
    """
    _check_env_object(env)
    if isinstance(env, LegacyStep) or has_standard_step(env):
        params = env.default_params if env_params is None else env_params
        _check_env_params(env, params)
        return env, params
    if not _is_env(env):
        raise ValueError(
            "env must be an environment id or an object with reset, step, "
            f"observation_space and action_space; got {type(env).__name__}"
        )
    if env_params is None and not hasattr(env, "default_params"):
        raise ValueError(f"env_params: {type(env).__name__} has no default_params; pass env_params")
    params = env.default_params if env_params is None else env_params
    _check_env_params(env, params)
    if _step_arity(env, params) == 5:
        return LegacyStep(env), params
    return env, params


def _check_env_object(env: Any) -> None:
    """Refuse the common wrong things given as ``env``, naming what to give instead."""
    if isinstance(env, type):
        raise ValueError(
            f"env: got the class {env.__name__}; pass an instance, {env.__name__}(), or an id"
        )
    module = type(env).__module__.split(".")[0]
    if module in ("gymnasium", "gym"):
        raise ValueError(
            f"env: a {module} environment ({type(env).__name__}) is not a JAX environment; "
            "give a gymnax id such as 'CartPole-v1' or an instance with the gymnax protocol "
            "(docs/extending.md)"
        )


def _check_env_params(env: Any, params: Any) -> None:
    """Refuse ``env_params`` whose structure is not the env's ``default_params``'."""
    default = getattr(env, "default_params", None)
    if default is None or params is default:
        return
    if jax.tree.structure(params) != jax.tree.structure(default):
        raise ValueError(
            f"env_params: got {type(params).__name__}, which is not {type(env).__name__}'s "
            f"params ({type(default).__name__}); start from env.default_params.replace(...)"
        )


def _step_arity(env: Any, params: Any) -> int:
    """How many values ``env.step`` returns (traced abstractly, nothing runs)."""

    def probe(key):
        _, state = env.reset(key, params)
        action = env.action_space(params).sample(key)
        return env.step(key, state, action, params)

    return len(jax.eval_shape(probe, jax.random.key(0)))


class LegacyStep(Environment):
    """Adapt an environment whose ``step`` returns gymnax 0.x's ``(obs, state, reward,
    done, info)``.

    ``done`` becomes ``terminated`` and ``truncated`` is always False: a time
    limit inside ``done`` is indistinguishable from a true termination, so a
    critic does not bootstrap there (the one thing lost). ``final_observation``
    is the returned ``obs``, which is only read where the step did not end
    the episode (a segment's end), and there it is the true next observation.
    """

    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.inner = inner

    @property
    def default_params(self) -> Any:
        return self.inner.default_params

    def reset(self, key, params=None):
        return self.inner.reset(key, params)

    def step(self, key, state, action, params=None):
        obs, state, reward, done, info = self.inner.step(key, state, action, params)
        done = jnp.asarray(done, bool)
        info = dict(info)
        info["final_observation"] = obs
        return obs, state, reward, done, jnp.zeros_like(done), info

    def observation_space(self, params):
        return self.inner.observation_space(params)

    def action_space(self, params):
        return self.inner.action_space(params)

    @property
    def name(self) -> str:
        return getattr(self.inner, "name", type(self.inner).__name__)


def env_spec(env: Any, env_params: Any) -> EnvSpec:
    """Read the observation shape, action space and episode limit of ``env``.

    ``Discrete`` spaces are recognised by their ``n``, ``Box`` spaces by ``low``,
    ``high`` and ``shape`` (any suite's space classes work).

    Args:
      env: an environment following the protocol.
      env_params: its params (``max_steps_in_episode`` gives the episode limit,
        0 when absent).

    Returns:
      The :class:`EnvSpec`; for a Box, ``action_dim`` is the flattened action size
      and ``action_low``/``action_high`` are ``[action_dim]`` float32.

    Raises:
      ValueError: the action space is neither Discrete nor Box.
    """
    obs_shape = tuple(int(d) for d in env.observation_space(env_params).shape)
    space = env.action_space(env_params)
    max_steps = int(getattr(env_params, "max_steps_in_episode", 0) or 0)
    if hasattr(space, "n"):
        return EnvSpec(obs_shape, True, int(space.n), None, None, max_steps)
    if all(hasattr(space, a) for a in ("low", "high", "shape")):
        shape = tuple(space.shape) or (1,)
        size = 1
        for d in shape:
            size *= int(d)
        low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), (size,))
        high = jnp.broadcast_to(jnp.asarray(space.high, jnp.float32), (size,))
        return EnvSpec(obs_shape, False, size, low, high, max_steps)
    raise ValueError(
        f"action space {type(space).__name__} is not supported; allowed: Discrete, Box"
    )


def as_obs(obs: Any) -> jax.Array:
    """One observation as float32, its shape kept.

    Args:
      obs: an observation (array-like, any dtype and shape).

    Returns:
      ``obs`` as a float32 ``jax.Array`` of the same shape.
    """
    return jnp.asarray(obs).astype(jnp.float32)


class EpisodeStats(NamedTuple):
    """Running per-env return and length of the current episode."""

    ret: jax.Array  # [B] float32
    length: jax.Array  # [B] int32

    @classmethod
    def zeros(cls, num_envs: int) -> EpisodeStats:
        """Statistics of ``num_envs`` envs at the start of their episodes.

        Args:
          num_envs: B.

        Returns:
          ``ret`` ``[B]`` float32 and ``length`` ``[B]`` int32, all zeros.
        """
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
    """Map a policy action to what the env accepts (clip Gaussian samples to the Box).

    Args:
      spec: the environment's :class:`EnvSpec`.
      action: ``[...]`` int32 (discrete) or ``[..., action_dim]`` float32.

    Returns:
      ``action`` unchanged (discrete) or clipped to ``[action_low, action_high]``.
    """
    if spec.discrete:
        return action
    return jnp.clip(action, spec.action_low, spec.action_high)


def _finish_step(spec: EnvSpec, obs, state, reward, terminated, truncated, final_obs):
    terminated = jnp.asarray(terminated, bool)
    truncated = jnp.logical_and(jnp.asarray(truncated, bool), ~terminated)
    return StepOut(
        as_obs(obs),
        state,
        jnp.asarray(reward, jnp.float32),
        terminated,
        truncated,
        as_obs(final_obs),
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
    """Step one environment with gymnax's auto-reset, keeping s'_t and both flags.

    Args:
      key: PRNG key of the step (and of the auto-reset).
      env: the environment.
      env_params: its params.
      spec: its :class:`EnvSpec`.
      state: the environment's state.
      action: ``[]`` int32 (discrete) or ``[action_dim]`` float32 (clipped to the
        Box and reshaped to the action space's shape here).

    Returns:
      :class:`StepOut` with float32 ``obs``/``final_obs`` ``[*obs_shape]``
      (``obs`` the next episode's first where this step ended one), a float32
      scalar ``reward`` and bool scalars ``terminated`` and ``truncated``
      (``truncated`` is False where ``terminated``).
    """
    act = _env_act(env, env_params, spec, action)
    obs, state, reward, terminated, truncated, info = env.step(key, state, act, env_params)
    return _finish_step(spec, obs, state, reward, terminated, truncated, info["final_observation"])


def has_standard_step(env: Any) -> bool:
    """True when ``env`` uses gymnax's own ``step`` and ``is_truncated`` (no override),
    so :func:`step_with_reset` reproduces its auto-reset exactly.

    Args:
      env: an environment.

    Returns:
      ``True`` for a gymnax ``Environment`` subclass that overrides neither
      method, else ``False``.
    """
    if not isinstance(env, Environment):
        return False
    cls = type(env)
    return cls.step is Environment.step and cls.is_truncated is Environment.is_truncated


def reset_raw(key: jax.Array, env: Environment, env_params: Any) -> tuple[Any, Any]:
    """``env.reset_env``: the reset observation (unflattened) and state, as ``step`` draws them.

    Args:
      key: PRNG key.
      env: an environment with :func:`has_standard_step`.
      env_params: its params.

    Returns:
      ``(obs, state)`` as the environment returns them (obs not cast to float32).
    """
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

    Args:
      key: PRNG key of the step.
      env: the environment.
      env_params: its params.
      spec: its :class:`EnvSpec`.
      state: the environment's state.
      action: ``[]`` int32 or ``[action_dim]`` float32, as in :func:`step`.
      reset_obs: :func:`reset_raw`'s observation for this step.
      reset_state: :func:`reset_raw`'s state for this step.

    Returns:
      :class:`StepOut` as :func:`step` returns it.
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
    """Reset one environment.

    Args:
      key: PRNG key.
      env: the environment.
      env_params: its params.

    Returns:
      ``(obs [*obs_shape] float32, state)``.
    """
    obs, state = env.reset(key, env_params)
    return as_obs(obs), state


def _sequence_task():
    from jaxpg.tasks.sequence import SequenceTask

    return SequenceTask()


_REGISTRY["Sequence-v0"] = _sequence_task  # built in (jaxpg.tasks.sequence)
