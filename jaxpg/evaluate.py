"""Evaluate a policy on fresh complete episodes (vmapped, one program)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxpg import networks, rollout
from jaxpg.config import Config
from jaxpg.update import Agent, make_agent


class EvalResult(NamedTuple):
    returns: jax.Array  # [num_episodes] undiscounted episode returns
    lengths: jax.Array  # [num_episodes]


def _greedy(agent: Agent):
    def apply(params, obs):
        dist = agent.policy_apply(params, obs)
        if isinstance(dist, networks.Gaussian):
            # Zero noise: the mean action.
            return networks.Gaussian(dist.mean, jnp.full_like(dist.log_std, -30.0))
        return dist * 1e6  # argmax up to ties

    return apply


def evaluate_agent(
    key: jax.Array, agent: Agent, policy_params, num_episodes: int, greedy: bool = False
) -> EvalResult:
    """Run ``num_episodes`` complete episodes of π and return their returns/lengths."""
    apply = _greedy(agent) if greedy else agent.policy_apply
    trans = rollout.rollout_episodes(
        key,
        apply,
        policy_params,
        agent.env,
        agent.env_params,
        agent.spec,
        num_episodes,
        agent.spec.max_episode_steps,
    )
    ret = jnp.sum(trans.reward * trans.mask, axis=0)
    length = jnp.sum(trans.mask, axis=0)
    return EvalResult(ret, length)


def make_evaluate(
    config: Config, num_episodes: int = 64, greedy: bool = False, env=None, env_params=None
):
    """Return ``evaluate(key, policy_params) -> EvalResult`` (safe to jit/vmap).

    Episodes run until termination or the environment's time limit, so the
    environment must define ``max_steps_in_episode``.
    """
    agent = make_agent(config, env, env_params)
    if agent.spec.max_episode_steps < 1:
        raise ValueError("evaluation needs env_params.max_steps_in_episode >= 1")
    return lambda key, params: evaluate_agent(key, agent, params, num_episodes, greedy)
