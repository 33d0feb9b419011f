"""Vectorized rollouts: ``jax.vmap`` over environments × ``lax.scan`` over time.

Both modes return a time-major :class:`Transition` with leaves ``[T, B, ...]``.

* :func:`rollout_segment`: a fixed-length segment that continues from the
  carried env state, so episodes span updates. Critic estimators bootstrap at
  truncations and at the segment's end from V(``final_obs``).
* :func:`rollout_episodes`: every env is reset and runs one complete episode;
  ``mask`` is 1 up to and including the step that ends it and 0 afterwards.
  ``T`` must be at least the episode limit for every episode to finish.

``policy_apply(params, obs[B, ...])`` returns the action distribution's
parameters (logits, or a ``networks.Gaussian``). A recurrent policy
(:class:`~jaxpg.networks.RecurrentModel`) is rolled out by giving its ``step``
``(params, h, obs) -> (dist, v, h')`` as ``policy_apply`` and its state in the
carry (``EnvCarry.hidden``, or ``hidden=`` for fresh episodes): the state is
carried from step to step and zeroed after every step that ends an episode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxpg import envs, networks


class Transition(NamedTuple):
    """A rollout, time-major ``[T, B, ...]``."""

    obs: jax.Array  # s_t, [T, B, *obs_shape]
    action: jax.Array  # a_t, [T, B] int32 or [T, B, d] float32 (unclipped sample)
    log_prob: jax.Array  # log π_old(a_t|s_t), [T, B]
    reward: jax.Array  # r_t, [T, B]
    terminated: jax.Array  # [T, B] bool
    truncated: jax.Array  # [T, B] bool (never both with terminated)
    final_obs: jax.Array  # s'_t, the true next observation, [T, B, *obs_shape]
    mask: jax.Array  # [T, B] float32, 1 where the step belongs to the data
    ep_return: jax.Array  # [T, B] running episode return including r_t
    ep_length: jax.Array  # [T, B] running episode length including step t

    @property
    def done(self) -> jax.Array:
        return jnp.logical_or(self.terminated, self.truncated)


class EnvCarry(NamedTuple):
    """Env state carried across segments: ``[B, ...]`` leaves."""

    state: Any
    obs: jax.Array
    stats: envs.EpisodeStats
    hidden: Any = None  # a recurrent policy's state before s_t (None: feed-forward)


class _Static(NamedTuple):
    policy_apply: Callable
    env: envs.Environment
    spec: envs.EnvSpec


def reset_envs(key: jax.Array, env, env_params, num_envs: int, group_size: int = 1) -> EnvCarry:
    """Reset ``num_envs`` environments with one key each.

    Args:
      key: PRNG key, split into ``num_envs``.
      env, env_params: the environment (protocol of :mod:`jaxpg.envs`).
      num_envs: B.
      group_size: envs per start state: groups of this many consecutive envs
        share one reset key (1: every env its own).

    Returns:
      :class:`EnvCarry` with ``[B, ...]`` leaves and zeroed episode statistics.
      No leaf is weak-typed (:func:`strong_types`): a reset that writes a Python
      scalar (Pendulum's ``last_u = 0.0``) would give a weak leaf that ``step``
      returns strong, and a loop feeding an update its own output would compile
      it twice.
    """
    keys = jnp.repeat(jax.random.split(key, num_envs // group_size), group_size, axis=0)
    obs, state = jax.vmap(envs.reset, in_axes=(0, None, None))(keys, env, env_params)
    return strong_types(EnvCarry(state, obs, envs.EpisodeStats.zeros(num_envs)))


def strong_types(tree: Any) -> Any:
    """``tree`` with every weak-typed leaf made strong (same dtype, same values).

    Example:
      >>> import jax
      >>> jax.typeof(strong_types({"x": jnp.asarray(0.0)})["x"]).weak_type
      False
    """
    return jax.tree.map(lambda x: jnp.asarray(x, x.dtype), tree)


class _StepRandomness(NamedTuple):
    """One step's pre-drawn randomness: action noise ``[B, ...]``, env keys ``[B]`` and,
    for envs with gymnax's standard ``step``, the auto-reset's obs/state ``[B, ...]``."""

    noise: jax.Array
    env_keys: jax.Array
    reset_obs: Any = None
    reset_state: Any = None


def _draw(
    key: jax.Array, static: _Static, env_params, params, obs: jax.Array, steps: int, hidden=None
):
    """All ``steps`` steps' randomness at once, ``[steps, B, ...]``.

    Besides the action noise and env keys, the resets that gymnax's auto-reset
    would compute (and discard unless the episode ended) inside every step are
    computed here in one vectorized call, so no RNG runs inside the sequential
    loop (on CPU, threefry inside a loop is a rolled loop of small kernels).
    """
    k_act, k_env, k_reset = jax.random.split(key, 3)
    dist = jax.eval_shape(lambda p, o, h: _policy(static, p, o, h)[0], params, obs, hidden)
    noise = networks.sample_noise(k_act, dist, (steps,))
    env_keys = jax.random.split(k_env, (steps, obs.shape[0]))
    if not envs.has_standard_step(static.env):
        return _StepRandomness(noise, env_keys)
    reset_keys = jax.random.split(k_reset, (steps, obs.shape[0]))
    reset = jax.vmap(jax.vmap(envs.reset_raw, in_axes=(0, None, None)), in_axes=(0, None, None))
    reset_obs, reset_state = reset(reset_keys, static.env, env_params)
    return _StepRandomness(noise, env_keys, reset_obs, reset_state)


def _policy(static: _Static, params, obs, hidden):
    """``(dist, hidden')``: the feed-forward policy, or a recurrent one's step."""
    if hidden is None:
        return static.policy_apply(params, obs), None
    dist, _, hidden = static.policy_apply(params, hidden, obs)
    return dist, hidden


def _act_and_step(static: _Static, env_params, params, carry: EnvCarry, rng: _StepRandomness):
    """Sample a_t ~ π(·|s_t) for every env and step them all once."""
    dist, hidden = _policy(static, params, carry.obs, carry.hidden)
    action = networks.sample_with_noise(dist, rng.noise)
    logp = networks.log_prob(dist, action)
    if rng.reset_state is None:
        out = jax.vmap(envs.step, in_axes=(0, None, None, None, 0, 0))(
            rng.env_keys, static.env, env_params, static.spec, carry.state, action
        )
    else:
        out = jax.vmap(envs.step_with_reset, in_axes=(0, None, None, None, 0, 0, 0, 0))(
            rng.env_keys,
            static.env,
            env_params,
            static.spec,
            carry.state,
            action,
            rng.reset_obs,
            rng.reset_state,
        )
    ret = carry.stats.ret + out.reward
    length = carry.stats.length + 1
    done = jnp.logical_or(out.terminated, out.truncated)
    stats = envs.EpisodeStats(jnp.where(done, 0.0, ret), jnp.where(done, 0, length))
    trans = Transition(
        obs=carry.obs,
        action=action,
        log_prob=logp,
        reward=out.reward,
        terminated=out.terminated,
        truncated=out.truncated,
        final_obs=out.final_obs,
        mask=jnp.ones_like(out.reward),
        ep_return=ret,
        ep_length=length,
    )
    if hidden is not None:
        hidden = networks.reset_state(hidden, done)
    # Strong types also out of step (MetaMaze writes weak rewards into its state).
    return EnvCarry(strong_types(out.state), out.obs, stats, hidden), trans


def rollout_segment(
    key: jax.Array,
    policy_apply: Callable,
    params: Any,
    env,
    env_params: Any,
    spec: envs.EnvSpec,
    carry: EnvCarry,
    num_steps: int,
) -> tuple[EnvCarry, Transition]:
    """Run ``num_steps`` steps of every env from ``carry``.

    Returns:
      ``(carry, transition)`` with transition leaves ``[num_steps, B, ...]``.
    """
    static = _Static(policy_apply, env, spec)
    body = lambda c, r: _act_and_step(static, env_params, params, c, r)  # noqa: E731
    rng = _draw(key, static, env_params, params, carry.obs, num_steps, carry.hidden)
    return jax.lax.scan(body, carry, rng)


class _EpisodeCarry(NamedTuple):
    env: EnvCarry
    alive: jax.Array  # [B] bool: the first episode has not ended yet


def _episode_body(static, env_params, params, carry: _EpisodeCarry, rng: _StepRandomness):
    env_carry, trans = _act_and_step(static, env_params, params, carry.env, rng)
    mask = carry.alive.astype(jnp.float32)
    alive = jnp.logical_and(carry.alive, ~trans.done)
    return _EpisodeCarry(env_carry, alive), trans._replace(mask=mask)


def rollout_episodes(
    key: jax.Array,
    policy_apply: Callable,
    params: Any,
    env,
    env_params: Any,
    spec: envs.EnvSpec,
    num_envs: int,
    horizon: int,
    group_size: int = 1,
    hidden: Any = None,
) -> Transition:
    """Run one complete episode in each of ``num_envs`` fresh environments.

    With ``group_size`` G > 1, groups of G consecutive envs start from the same
    reset (one key repeated G times), as group-baseline estimators need.

    Steps after an env's first ``terminated | truncated`` are masked (``mask``
    = 0); gymnax's auto-reset keeps them well-defined but they are not data.
    ``hidden``: a recurrent policy's initial state ``[num_envs, ...]`` (zeros);
    ``policy_apply`` is then its ``step``.

    Returns:
      ``[horizon, num_envs, ...]`` transition with ``mask``.
    """
    k_reset, k_run = jax.random.split(key)
    fresh = reset_envs(k_reset, env, env_params, num_envs, group_size)._replace(hidden=hidden)
    carry = _EpisodeCarry(fresh, jnp.ones((num_envs,), bool))
    static = _Static(policy_apply, env, spec)
    body = lambda c, r: _episode_body(static, env_params, params, c, r)  # noqa: E731
    rng = _draw(k_run, static, env_params, params, carry.env.obs, horizon, hidden)
    _, trans = jax.lax.scan(body, carry, rng)
    return trans
