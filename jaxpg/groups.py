"""Group rollouts: G complete episodes from each of B/G start states.

The group-relative estimators (``rloo``, ``grpo``, ``grpo_nostd``; see
:mod:`jaxpg.estimators`) compare each episode's return with the returns of the
other episodes that began in the same state — the setting of RL fine-tuning of
language models, where a group is G samples for one prompt. Here a group is G
environments reset with the *same* key (so the same start state, the
"prompt") that then act and step with independent randomness.

Layout: envs are group-major, env ``b`` belongs to group ``b // G``; leaves are
time-major ``[T, B, ...]`` as everywhere in jaxpg, with ``mask`` 0 after each
env's first episode ends (as :func:`jaxpg.rollout.rollout_episodes`).

:func:`exact_group_gradient` gives, for a small enumerable MDP, the exact
expectation of a group estimator (all Kᴳ joint outcomes of a group of G
trajectories drawn from K possible ones), which is how the documented biases
are checked.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxpg import envs, rollout


def reset_groups(key: jax.Array, env, env_params, num_envs: int, group_size: int):
    """Reset ``num_envs`` envs in groups of ``group_size`` sharing one reset key each.

    Args:
      key: PRNG key, split into ``num_envs // group_size`` reset keys.
      env, env_params: the environment (:mod:`jaxpg.envs`).
      num_envs: B, a multiple of ``group_size``.
      group_size: G, consecutive envs that start from the same state.

    Returns:
      :class:`jaxpg.rollout.EnvCarry` with ``[B, ...]`` leaves and zeroed
      episode statistics.

    Raises:
      ValueError: ``num_envs`` is not a multiple of ``group_size``.
    """
    if num_envs % group_size:
        raise ValueError(f"num_envs={num_envs} must be a multiple of group_size={group_size}")
    return rollout.reset_envs(key, env, env_params, num_envs, group_size)


def rollout_groups(
    key: jax.Array,
    policy_apply: Callable,
    params: Any,
    env,
    env_params: Any,
    spec: envs.EnvSpec,
    num_envs: int,
    horizon: int,
    group_size: int,
    hidden=None,
) -> rollout.Transition:
    """One complete episode per env, G = ``group_size`` envs per start state.

    Args:
      key: randomness of the resets (one per group) and of the episodes.
      policy_apply: ``(params, obs[B, ...]) -> dist``.
      params: the policy's parameters.
      env, env_params, spec: the environment (:mod:`jaxpg.envs`).
      num_envs: B, a multiple of ``group_size``.
      horizon: T, at least the episode limit.
      group_size: G.
      hidden: a recurrent policy's initial state (:func:`jaxpg.rollout.rollout_episodes`).

    Returns:
      :class:`~jaxpg.rollout.Transition` with leaves ``[horizon, num_envs, ...]``
      and ``mask``.
    """
    if num_envs % group_size:
        raise ValueError(f"num_envs={num_envs} must be a multiple of group_size={group_size}")
    return rollout.rollout_episodes(
        key, policy_apply, params, env, env_params, spec, num_envs, horizon, group_size, hidden
    )


def exact_group_gradient(
    probs: jax.Array,
    grads: jax.Array,
    rets: jax.Array,
    lengths: jax.Array,
    group_size: int,
    weight_fn: Callable[[jax.Array], jax.Array],
    per_length: bool = False,
) -> jax.Array:
    """E[(1/G) Σ_i c_i ∇log p(τ_i) Ψ_i] for a group of G i.i.d. trajectories, exactly.

    Enumerates the Kᴳ ordered groups of the K possible trajectories.

    Args:
      probs: p(τ_k) ``[K]`` (summing to 1).
      grads: ∇log p(τ_k) ``[K, P]``.
      rets: R(τ_k) ``[K]``.
      lengths: |τ_k| ``[K]``.
      group_size: G.
      weight_fn: ``R[G] -> Ψ[G]`` (e.g. ``lambda r: group_baseline(r, G, "std")``).
      per_length: c_i = 1/|τ_i| (grpo) instead of 1.

    Returns:
      The expectation ``[P]``.
    """
    combos = jnp.array(list(itertools.product(range(probs.shape[0]), repeat=group_size)))
    p = jnp.prod(probs[combos], axis=1)  # [K^G]
    psi = jax.vmap(weight_fn)(rets[combos])  # [K^G, G]
    if per_length:
        psi = psi / lengths[combos]
    per_group = jnp.einsum("cg,cgp->cp", psi, grads[combos]) / group_size
    return p @ per_group
