"""Per-trajectory policy-gradient estimates on complete episodes.

Conventions:

* A *pool* is a time-major :class:`jaxpg.rollout.Transition` ``[T, K, ...]``
  holding K complete episodes, one per column, each started from its own reset
  and sampled with its own key (``jax.random.split(key, K)``, so a trajectory
  depends only on its key, never on the chunk size). ``mask[t, i]`` is 1 up to
  and including the step that ends episode i and 0 afterwards.
* The per-trajectory gradient of estimator e is
  ĝ_i = ∇_θ Σ_t stop_grad(w_t) log π_θ(a_t|s_t) mask_t, flattened with
  ``jax.flatten_util.ravel_pytree``; the batch estimate of N trajectories is
  the mean of their ĝ_i (sum over time, mean over trajectories: the unbiased
  form; PPO's per-step mean is a different, ratio estimator).
* Targets. With γ = 1 and no bootstrapping every estimator here except GAE with
  λ < 1 is unbiased for T1, ∇J with J = E[Σ_{t<T} r_t] and T the episode's time
  limit. The time limit ends the objective, so by default a truncation is
  treated like a termination (``bootstrap_truncated=False``); with ``True`` the
  critic bootstraps V(final obs) there (the infinite-horizon semantics).
* Groups. The group kinds ``rloo``, ``grpo`` and ``grpo_nostd`` draw
  episodes in groups of G from one start state (one reset key repeated G
  times, :func:`jaxpg.groups.rollout_groups`, as training does; group g uses
  ``jax.random.split(key, K/G)[g]``), group-major (trajectory i is in group
  i // G). Their weight is the trainer's group weight
  (:func:`jaxpg.estimators.weights`) on every step of episode i, written per
  trajectory: w_i = c_i Ψ_i with Ψ_i = R_i − mean_{j≠i} R_j (``rloo``),
  R_i − R̄ (``grpo_nostd``) or (R_i − R̄)/(s + ε) (``grpo``), and c_i = 1/|τ_i|
  for ``grpo``, else 1; the mean of a group's G gradients is the group's
  estimate (:func:`group_means`). Rows of one group are correlated: measure
  variance over groups, not over rows.
* Discounting. The *common* reward-to-go weight Σ_{k≥t} γ^{k−t} r_k is
  unbiased for the semi-gradient g^γ = E Σ_t ∇log π_t Q^γ_t, which is not ∇J_γ.
  ``exact_discount=True`` multiplies the weights of ``reward_to_go``,
  ``baseline`` and ``vpg`` by γ^t, which makes them unbiased for ∇J_γ,
  J_γ = E[Σ_t γ^t r_t]. ``reinforce`` weights every step by R_γ(τ) = Σ_k γ^k r_k
  and is already exact for ∇J_γ; it is left unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from jaxpg import envs, estimators, groups, networks, rollout

Array = jax.Array
#: The registered estimators (every row of :data:`jaxpg.estimators.REGISTRY`, read
#: live, so estimators added by :func:`jaxpg.estimators.register` are measured too),
#: and the group-relative ones among them (episodes in groups of G from one start state).
KINDS = estimators.ESTIMATORS
GROUP_KINDS = estimators.Names(lambda e: e.grouped)
#: G of the group kinds when none is given (``jaxpg.Config``'s default).
DEFAULT_GROUP_SIZE = 8


class Estimator(NamedTuple):
    """One estimator to measure: a weight rule and its maths parameters.

    Attributes:
      kind: a registered estimator name: ``reinforce`` (w_t = R(τ)),
        ``reward_to_go`` (w_t = G_t), ``baseline`` (w_t = G_t − V(s_t)),
        ``vpg`` (w_t = GAE(γ, λ)_t), a group kind ``rloo``, ``grpo``,
        ``grpo_nostd`` (module docstring), ``cispo``, ``gspo``, ``dapo``
        (:mod:`jaxpg.llm`; at θ_old), or one added with
        :func:`jaxpg.estimators.register`.
      gamma: discount γ.
      lam: GAE λ (``vpg`` only).
      exact_discount: multiply w_t by γ^t (the exact ∇J_γ form).
      bootstrap_truncated: bootstrap V(final obs) at time-limit truncations.
      label: name used in tables; defaults to ``kind``.
      group_size: G, episodes per start state; ≥ 2 for the group kinds, whose
        pools must be sampled with the same G (``sample_episodes``).
    """

    kind: str
    gamma: float = 1.0
    lam: float = 1.0
    exact_discount: bool = False
    bootstrap_truncated: bool = False
    label: str | None = None
    group_size: int = 1

    @property
    def name(self) -> str:
        return self.label or self.kind

    @property
    def row(self) -> estimators.Estimator:
        """The estimator's registry row (:func:`jaxpg.estimators.info`)."""
        return estimators.info(self.kind)

    @property
    def grouped(self) -> bool:
        return self.row.grouped

    @property
    def uses_critic(self) -> bool:
        return self.row.critic


def check_kind(kind: str) -> None:
    """Raise ``ValueError`` unless ``kind`` is a registered estimator (:data:`KINDS`)."""
    estimators.info(kind)


def check_estimator(est: Estimator) -> None:
    """Raise ``ValueError`` for an unknown kind or a group kind with G < 2."""
    check_kind(est.kind)
    if est.group_size < 1 or (est.grouped and est.group_size < 2):
        lowest = 2 if est.grouped else 1
        raise ValueError(
            f"group_size={est.group_size} is invalid for {est.kind}; allowed: >= {lowest}"
        )


def check_groups(num_trajectories: int, group_size: int) -> None:
    """Raise ``ValueError`` unless ``num_trajectories`` is a multiple of ``group_size``."""
    if num_trajectories % group_size:
        raise ValueError(
            f"num_trajectories={num_trajectories} must be a multiple of group_size={group_size}"
        )


# --- sampling -----------------------------------------------------------------


def _one_group(key, policy_apply, params, env, env_params, spec, horizon, group_size):
    """G complete episodes from one start state (one key): leaves ``[T, G, ...]``.

    With G = 1 this is one episode from its own key.
    """
    return groups.rollout_groups(
        key, policy_apply, params, env, env_params, spec, group_size, horizon, group_size
    )


def _horizon(spec: envs.EnvSpec, max_steps: int | None) -> int:
    horizon = spec.max_episode_steps if max_steps is None else int(max_steps)
    if horizon < 1:
        raise ValueError(
            "max_steps is needed: this environment has no max_steps_in_episode to bound an episode"
        )
    return horizon


def sample_episodes(
    key: Array,
    env: envs.Environment,
    env_params: Any,
    policy_apply: Callable,
    policy_params: Any,
    num_trajectories: int,
    *,
    max_steps: int | None = None,
    chunk_size: int = 1024,
    group_size: int = 1,
) -> rollout.Transition:
    """Sample a pool of complete episodes, one key per trajectory (or per group).

    Args:
      key: PRNG key; trajectory i uses ``jax.random.split(key, K)[i]``; with
        groups, group g (trajectories gG … gG + G − 1) uses
        ``jax.random.split(key, K/G)[g]``.
      env, env_params: a gymnax environment with discrete actions.
      policy_apply: ``(params, obs[..., obs_size]) -> logits[..., n]``.
      policy_params: frozen policy parameters.
      num_trajectories: K.
      max_steps: T, the episode limit (default: the env's
        ``max_steps_in_episode``). An episode still running at step T − 1 is
        cut there; the objective is then the T-step one.
      chunk_size: trajectories simulated at once (bounds memory, not results).
      group_size: G, episodes per start state (the same reset key repeated G
        times); K must be a multiple of G.

    Returns:
      Time-major ``Transition`` ``[T, K, ...]`` with ``mask``, group-major.
    """
    spec = envs.env_spec(env, env_params)
    if not spec.discrete:
        raise ValueError("per-trajectory gradients need a discrete action space")
    if group_size < 1:
        raise ValueError(f"group_size={group_size} is invalid; allowed: >= 1")
    check_groups(num_trajectories, group_size)
    return _sample(
        key,
        env_params,
        policy_params,
        policy_apply,
        env,
        spec,
        _horizon(spec, max_steps),
        num_trajectories // group_size,
        max(1, min(chunk_size, num_trajectories) // group_size),
        group_size,
    )


def _ungroup(x: Array) -> Array:
    """``[M, T, G, ...]`` (groups first) → time-major ``[T, M·G, ...]``."""
    x = jnp.swapaxes(x, 0, 1)
    return x.reshape((x.shape[0], -1) + x.shape[3:])


@functools.partial(jax.jit, static_argnums=(3, 4, 5, 6, 7, 8, 9))
def _sample(key, env_params, policy_params, policy_apply, env, spec, horizon, num, chunk, size):
    keys = jax.random.split(key, num)
    fn = lambda k: _one_group(  # noqa: E731
        k, policy_apply, policy_params, env, env_params, spec, horizon, size
    )
    return jax.tree.map(_ungroup, jax.lax.map(fn, keys, batch_size=chunk))


def trim_pool(pool: rollout.Transition) -> rollout.Transition:
    """Cut the time axis to the longest episode, rounded up to 32, 64, 128 or 256.

    Steps after every episode's end carry no data, so gradients are unchanged;
    a few fixed lengths keep the number of compiled shapes small.
    """
    limit = pool.mask.shape[0]
    longest = int(jnp.max(jnp.sum(pool.mask, axis=0)))
    t = next((s for s in (32, 64, 128, 256) if s >= longest), limit)
    return jax.tree.map(lambda x: x[: min(t, limit)], pool)


def critic_values(value_apply: Callable | None, value_params: Any, pool: rollout.Transition):
    """V(s_t) and V(s'_t) ``[T, K]`` (zeros without a critic)."""
    if value_apply is None:
        zeros = jnp.zeros_like(pool.reward)
        return zeros, zeros
    return value_apply(value_params, pool.obs), value_apply(value_params, pool.final_obs)


def episode_flags(pool: rollout.Transition, bootstrap_truncated: bool):
    """Effective ``(terminated, truncated)`` for weights on complete episodes.

    The last step of the array ends every episode still running (a cut at the
    objective's horizon). Without bootstrapping, truncations become terminations.
    """
    last = jnp.zeros_like(pool.terminated).at[-1].set(True)
    trunc = jnp.logical_or(pool.truncated, jnp.logical_and(last, pool.mask > 0))
    trunc = jnp.logical_and(trunc, ~pool.terminated)
    if bootstrap_truncated:
        return pool.terminated, trunc
    return jnp.logical_or(pool.terminated, trunc), jnp.zeros_like(trunc)


@functools.partial(jax.jit, static_argnums=0)
def episode_weights(
    est: Estimator, pool: rollout.Transition, values: Array, next_values: Array
) -> Array:
    """Weights w_t ``[T, K]`` of one estimator on a pool of complete episodes.

    Rewards after an episode's end are zeroed, and the weights are the
    trainer's (:func:`jaxpg.estimators.batch_weights`, without advantage
    normalisation: ``reinforce`` → R(τ), ``reward_to_go`` → G_t, ``baseline``
    → G_t − V(s_t), ``vpg``/``ppo``/``npg``/``trpo`` → GAE, the group kinds →
    the trainer's group weight, a registered estimator → its ``weights``).
    With ``exact_discount`` the weights of every estimator not built from
    whole-episode returns (``Estimator.discounted_return``) are multiplied by γ^t.

    The trainer scales the group weights of ``grpo``/``grpo_nostd`` by the
    batch's mean episode length (it averages over steps;
    ``Estimator.length_scaled``); that factor is divided out here, so
    w_i = c_i Ψ_i per trajectory (module docstring).

    Args:
      est: the estimator.
      pool: ``[T, K]`` complete episodes (groups of ``est.group_size``
        consecutive columns for the group kinds).
      values, next_values: V(s_t), V(s'_t) ``[T, K]`` (ignored without a critic).

    Returns:
      ``[T, K]`` weights (not yet masked).
    """
    check_estimator(est)
    reward = pool.reward * pool.mask
    term, trunc = episode_flags(pool, est.bootstrap_truncated)
    if est.grouped:
        check_groups(reward.shape[1], est.group_size)
    row = est.row
    w = estimators.batch_weights(
        est.kind, reward, values, next_values, term, trunc, pool.mask,
        gamma=est.gamma, lam=est.lam, group_size=est.group_size, normalize_advantages=False,
    ).psi  # fmt: skip
    if row.length_scaled:  # undo the trainer's per-step normalisation
        w = w / jnp.mean(jnp.sum(pool.mask, axis=0))
    if est.exact_discount and not row.discounted_return:  # R_γ(τ) is exact already
        t = jnp.arange(w.shape[0], dtype=w.dtype).reshape((-1,) + (1,) * (w.ndim - 1))
        w = w * jnp.asarray(est.gamma, w.dtype) ** t
    return w


# --- gradients ----------------------------------------------------------------


def _surrogate(policy_params, policy_apply, obs, action, weight, mask) -> Array:
    """L_i(θ) = Σ_t stop_grad(w_t) log π_θ(a_t|s_t) mask_t for one trajectory ``[T]``."""
    logp = networks.log_prob(policy_apply(policy_params, obs), action)
    return estimators.pg_surrogate(logp, weight, mask, 1.0)


def _flat_grad(policy_apply, policy_params, obs, action, weight, mask) -> Array:
    g = jax.grad(_surrogate)(policy_params, policy_apply, obs, action, weight, mask)
    return ravel_pytree(g)[0]


def gradients_from_weights(
    policy_apply: Callable,
    policy_params: Any,
    pool: rollout.Transition,
    weights: Array,
    *,
    chunk_size: int = 512,
) -> Array:
    """Per-trajectory gradients ĝ_i = Σ_t w_ti ∇log π(a_ti|s_ti) mask_ti.

    ``vmap(grad)`` over trajectories inside ``lax.map`` chunks, so memory is
    O(chunk · T · width) whatever K is.

    Args:
      policy_apply: ``(params, obs) -> logits``.
      policy_params: policy parameters (d of them once flattened).
      pool: ``[T, K]`` episodes (``obs``, ``action``, ``mask`` are used).
      weights: ``[T, K]`` weights w (wrapped in ``stop_gradient``).
      chunk_size: trajectories per vmapped chunk.

    Returns:
      ``[K, d]`` float32 (float64 under x64) per-trajectory gradients.
    """
    return _grads(
        policy_apply,
        min(chunk_size, weights.shape[1]),
        policy_params,
        pool.obs,
        pool.action,
        weights,
        pool.mask,
    )


@functools.partial(jax.jit, static_argnums=(0, 1))
def _grads(policy_apply, chunk, policy_params, obs, action, weights, mask):
    xs = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), (obs, action, weights, mask))
    fn = lambda x: _flat_grad(policy_apply, policy_params, *x)
    return jax.lax.map(fn, xs, batch_size=chunk)


def pool_gradients(
    policy_apply: Callable,
    policy_params: Any,
    pool: rollout.Transition,
    estimators_: Sequence[Estimator],
    *,
    value_apply: Callable | None = None,
    value_params: Any = None,
    chunk_size: int = 512,
) -> dict[str, Array]:
    """Per-trajectory gradients of several estimators on the SAME trajectories.

    Common random numbers: every estimator sees the same pool, so paired
    comparisons (variance ratios, bias differences) are sharper.

    Returns:
      ``{estimator.name: [K, d]}``.
    """
    values, next_values = critic_values(value_apply, value_params, pool)
    out = {}
    for est in estimators_:
        if est.uses_critic and value_apply is None:
            raise ValueError(f"estimator {est.name!r} needs value_apply and value_params")
        w = episode_weights(est, pool, values, next_values)
        out[est.name] = gradients_from_weights(
            policy_apply, policy_params, pool, w, chunk_size=chunk_size
        )
    return out


def _group_gradients(key, policy_params, value_params, env_params, static) -> Array:
    """Per-trajectory gradients ``[G, d]`` of one group (one episode when G = 1)."""
    policy_apply, value_apply, env, spec, horizon, est = static
    ep = _one_group(
        key, policy_apply, policy_params, env, env_params, spec, horizon, est.group_size
    )
    values, next_values = critic_values(value_apply, value_params, ep)
    w = episode_weights(est, ep, values, next_values)
    fn = lambda *x: _flat_grad(policy_apply, policy_params, *x)  # noqa: E731
    return jax.vmap(fn, in_axes=1)(ep.obs, ep.action, w, ep.mask)


def per_trajectory_gradients(
    key: Array,
    env: envs.Environment,
    env_params: Any,
    policy_apply: Callable,
    policy_params: Any,
    num_trajectories: int,
    *,
    estimator: str,
    gamma: float = 1.0,
    lam: float = 1.0,
    value_apply: Callable | None = None,
    value_params: Any = None,
    max_steps: int | None = None,
    exact_discount: bool = False,
    bootstrap_truncated: bool = False,
    chunk_size: int = 256,
    group_size: int | None = None,
) -> Array:
    """Flattened gradient estimate of each of K fresh complete trajectories.

    ĝ_i = Σ_t w_t ∇_θ log π_θ(a_t|s_t) over episode i; the mean over i is the
    batch estimate of ∇J. Sampling, weights and ``vmap(grad)`` run together in
    ``lax.map`` chunks, so memory is O(chunk · T + K · d).

    The group kinds (``rloo``, ``grpo``, ``grpo_nostd``) draw the K episodes
    in K/G groups from one start state each and weight them by their group's
    returns (module docstring); :func:`group_means` turns the rows into the
    K/G independent per-group estimates.

    Args:
      key: PRNG key; trajectory i uses ``jax.random.split(key, K)[i]`` (group g
        uses ``jax.random.split(key, K/G)[g]``).
      env, env_params: any gymnax environment with discrete actions.
      policy_apply: ``(params, obs) -> logits``.
      policy_params: frozen policy parameters.
      num_trajectories: K (a multiple of G).
      estimator: a registered estimator (:data:`KINDS`, user ones included).
        ``ppo``, ``npg`` and ``trpo`` give the gradient of their first step at
        θ_old written per trajectory: ``vpg``'s GAE weights (no normalisation).
      gamma: discount γ.
      lam: GAE λ (``vpg``).
      value_apply: ``(params, obs) -> value`` (needed by ``baseline``, ``vpg``).
      value_params: critic parameters.
      max_steps: episode limit T (default: the env's ``max_steps_in_episode``).
      exact_discount: weight step t by γ^t as well (unbiased for ∇J_γ).
      bootstrap_truncated: bootstrap V(final obs) at time-limit truncations.
      chunk_size: trajectories per vmapped chunk.
      group_size: G, episodes per start state (default: 8 for the group kinds,
        1 for the others).

    Returns:
      ``[num_trajectories, num_params]`` per-trajectory gradients, group-major.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxpg.variance import tabular
      >>> mdp = tabular.two_step_refund()
      >>> env = tabular.TabularEnv(mdp)
      >>> theta = jnp.zeros((mdp.num_states, mdp.num_actions))
      >>> g = per_trajectory_gradients(jax.random.key(0), env, env.default_params,
      ...     tabular.softmax_policy, theta, 8, estimator="reward_to_go")
      >>> g.shape
      (8, 8)
      >>> g = per_trajectory_gradients(jax.random.key(0), env, env.default_params,
      ...     tabular.softmax_policy, theta, 8, estimator="rloo", group_size=4)
      >>> group_means(g, 4).shape  # two groups of four
      (2, 8)
    """
    check_kind(estimator)
    if group_size is None:
        group_size = DEFAULT_GROUP_SIZE if estimator in GROUP_KINDS else 1
    est = Estimator(
        estimator, gamma, lam, exact_discount, bootstrap_truncated, group_size=group_size
    )
    check_estimator(est)
    check_groups(num_trajectories, group_size)
    if est.uses_critic and value_apply is None:
        raise ValueError(f"estimator={estimator!r} needs value_apply and value_params")
    spec = envs.env_spec(env, env_params)
    if not spec.discrete:
        raise ValueError("per-trajectory gradients need a discrete action space")
    static = (policy_apply, value_apply, env, spec, _horizon(spec, max_steps), est)
    g = _ptg(
        static,
        num_trajectories // group_size,
        max(1, min(chunk_size, num_trajectories) // group_size),
        key,
        policy_params,
        value_params,
        env_params,
    )
    return g.reshape(num_trajectories, -1)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _ptg(static, num, chunk, key, policy_params, value_params, env_params):
    keys = jax.random.split(key, num)
    fn = lambda k: _group_gradients(k, policy_params, value_params, env_params, static)
    return jax.lax.map(fn, keys, batch_size=chunk)


def group_means(grads: Array, group_size: int) -> Array:
    """The per-group estimates: the mean of each group's G rows.

    Args:
      grads: ``[K, d]`` per-trajectory gradients, group-major (K a multiple of G).
      group_size: G.

    Returns:
      ``[K/G, d]``: one independent sample of the group estimator per row.
    """
    check_groups(grads.shape[0], group_size)
    return jnp.mean(grads.reshape((-1, group_size) + grads.shape[1:]), axis=1)


def param_layers(params: Any) -> list[tuple[str, int, int]]:
    """``(name, start, stop)`` of each leaf in ``ravel_pytree`` order."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    out, start = [], 0
    for path, leaf in leaves:
        name = "/".join(str(getattr(p, "key", getattr(p, "idx", p))) for p in path)
        size = int(jnp.size(leaf))
        out.append((name, start, start + size))
        start += size
    return out
