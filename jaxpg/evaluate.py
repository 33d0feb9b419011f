"""Evaluate a policy on fresh complete episodes (vmapped, one program)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxpg import networks, normalization, rollout
from jaxpg.config import Config
from jaxpg.runspec import RunSpec, make_runspec


class EvalResult(NamedTuple):
    returns: jax.Array  # [num_episodes] undiscounted episode returns
    lengths: jax.Array  # [num_episodes]


def _greedy_dist(dist):
    if isinstance(dist, networks.Gaussian):
        # Zero noise: the mean action.
        return networks.Gaussian(dist.mean, jnp.full_like(dist.log_std, -30.0))
    return dist * 1e6  # argmax up to ties


def _greedy(policy, recurrent: bool):
    if recurrent:

        def step(params, h, obs):
            dist, v, h = policy(params, h, obs)
            return _greedy_dist(dist), v, h

        return step
    return lambda params, obs: _greedy_dist(policy(params, obs))


def evaluate_run(
    key: jax.Array,
    run: RunSpec,
    params: Any,
    num_episodes: int,
    greedy: bool = False,
    obs_norm: normalization.RunningStats | None = None,
) -> EvalResult:
    """Run ``num_episodes`` complete episodes of π and return their returns/lengths.

    ``params`` are the run's model parameters (``TrainState.params``); ``obs_norm``
    its observation statistics (``TrainState.obs_norm``), applied frozen. Each
    episode runs until termination or ``run.spec.max_episode_steps``.

    Args:
      key: PRNG key for resets, actions and env steps.
      run: the run's :class:`RunSpec` (env, model, recurrence).
      params: the model's parameters.
      num_episodes: episodes, run in parallel.
      greedy: act with the most likely action (the mean for Gaussians).
      obs_norm: the trained state's observation statistics; required when
        ``run.config.normalize_obs``.

    Returns:
      :class:`EvalResult` with ``returns`` (undiscounted) and ``lengths``, both
      ``[num_episodes]`` float32.

    Raises:
      ValueError: ``normalize_obs`` is set and ``obs_norm`` is ``None``.
    """
    if run.config.normalize_obs and obs_norm is None:
        raise ValueError(
            "obs_norm: this config has normalize_obs=True; pass the trained state's "
            "obs_norm (TrainState.obs_norm) to evaluate with its statistics"
        )
    model = normalization.with_obs_norm(run.model, obs_norm)
    policy = model.step if run.recurrent else model.policy
    apply = _greedy(policy, run.recurrent) if greedy else policy
    hidden = model.initial_state(num_episodes) if run.recurrent else None
    trans = rollout.rollout_episodes(
        key, apply, params, run.env, run.env_params, run.spec, num_episodes,
        run.spec.max_episode_steps, hidden=hidden,
    )  # fmt: skip
    ret = jnp.sum(trans.reward * trans.mask, axis=0)
    length = jnp.sum(trans.mask, axis=0)
    return EvalResult(ret, length)


def make_evaluate(
    config: Config,
    num_episodes: int = 64,
    greedy: bool = False,
    env: Any = None,
    env_params: Any = None,
    *,
    network: Any = None,
):
    """Return ``evaluate(key, params, obs_norm=None) -> EvalResult`` (safe to jit/vmap).

    ``params`` are a trained state's ``TrainState.params`` (the whole model's);
    with ``normalize_obs``, ``obs_norm`` is required: the state's
    ``TrainState.obs_norm``, used as it is (evaluation never updates it).
    Episodes run until termination or the environment's time limit, so the
    environment must define ``max_steps_in_episode``.

    Args:
      config: the run's configuration (env, networks).
      num_episodes: episodes per call, run in parallel.
      greedy: act with the most likely action (the mean for Gaussians).
      env, env_params, network: as in :func:`jaxpg.make_train`.

    Returns:
      ``evaluate(key, params, obs_norm=None) -> EvalResult`` with ``returns``
      and ``lengths`` ``[num_episodes]``.

    Example:
      >>> import jax, jaxpg
      >>> cfg = jaxpg.Config(num_envs=2, num_steps=16, total_timesteps=32)
      >>> out = jaxpg.make_train(cfg)(jax.random.key(0))
      >>> make_evaluate(cfg, 3)(jax.random.key(1), out.state.params).returns.shape
      (3,)
    """
    run = make_runspec(config, env, env_params, network=network)
    if run.spec.max_episode_steps < 1:
        raise ValueError("evaluation needs env_params.max_steps_in_episode >= 1")

    def evaluate(key, params, obs_norm=None):
        return evaluate_run(key, run, params, num_episodes, greedy, obs_norm)

    return evaluate
