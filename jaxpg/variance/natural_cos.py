"""How close the sampled natural-gradient direction is to the exact one, against N.

``npg`` and ``trpo`` step along x = (F̂ + λI)⁻¹ĝ, approximated by conjugate
gradient on Fisher-vector products, where ĝ and F̂ are estimated on the same
batch of N episodes (:func:`jaxpg.natural.trust_region_step`). On a
:class:`~jaxpg.variance.tabular.TabularMDP` with the tabular softmax policy
both have exact limits, by enumeration of every trajectory:

* the per-step Fisher matrix F = Σ_τ p(τ) Σ_t F(s_t) / Σ_τ p(τ) |τ|, with
  F(s) = Σ_a π(a|s) ∇log π(a|s) ∇log π(a|s)ᵀ from the jacobian of log π(·|s)
  (the limit of the Hessian of the batch's mean KL, which the trainer's
  Fisher-vector products differentiate);
* the per-step gradient g = E[Σ_t ∇log π(a_t|s_t) w_t] / E|τ| (the trainer
  averages the surrogate over steps), divided by σ_w, the occupancy-weighted
  standard deviation of the weights, when they are normalised as training
  does (``normalize=True``). The batch mean that normalisation subtracts is a
  baseline whose expectation term vanishes, and 1/σ_w only rescales g, so the
  limit *direction* is the same either way (normalisation changes the noise
  and the O(1/N) bias of the sampled step, and the step's length);
* the exact natural direction x* = (F + λI)⁻¹ g by a direct solve.

:func:`natural_cosines` draws R batches of N complete episodes for every N,
runs the trainer's own step (``trust_region_step`` with
``line_search_on=False``: the ``npg`` step, whose direction is also the one
``trpo``'s line search scales) and reports the mean cosine between the step
and x* with its standard error. The step is a ratio of batch estimates, so its
cosine is biased below 1 at small N and tends to the CG ``ceiling`` (the
cosine of ``cg_iters`` CG iterations on the exact F and g with x*; 1 once CG
converges) as N grows.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxpg import envs, estimators, natural, rollout
from jaxpg.variance import gradients, tabular
from jaxpg.variance.gradients import Estimator

Array = jax.Array
RTG = Estimator("reward_to_go")  # the default weights: G_t (γ = 1), no critic


class ExactNatural(NamedTuple):
    """Exact per-step quantities of one (MDP, θ, estimator) by enumeration."""

    fisher: Array  # [d, d] per-step mean Fisher matrix F
    grad: Array  # [d] per-step gradient g (divided by σ_w when normalised)
    direction: Array  # [d] (F + λI)⁻¹ g
    ceiling: Array  # cosine of cg_iters CG iterations on (F + λI)x = g with the direction


class NaturalCosine(NamedTuple):
    """Cosine of the sampled natural direction with the exact one, per batch size."""

    batch_sizes: np.ndarray  # [n] N, complete episodes per batch
    mean: np.ndarray  # [n] mean cosine over the repeats
    se: np.ndarray  # [n] its standard error (std / √R)
    cosines: np.ndarray  # [n, R] every repeat's cosine
    exact: ExactNatural


def _state_fisher(policy_apply, theta: Array, obs: Array) -> Array:
    """F(s) = Jᵀ diag(π) J with J = ∂log π(·|s)/∂θ ``[A, d]``: ``[d, d]``."""
    flat, unravel = ravel_pytree(theta)
    logp = lambda th: jax.nn.log_softmax(policy_apply(unravel(th), obs))  # noqa: E731
    jac = jax.jacobian(logp)(flat)
    p = jnp.exp(logp(flat))
    return (jac * p[:, None]).T @ jac


def exact_natural(
    mdp: tabular.TabularMDP,
    theta: Array,
    estimator: Estimator = RTG,
    *,
    damping: float = 0.1,
    normalize: bool = True,
    cg_iters: int = 10,
    value_table: Array | None = None,
) -> ExactNatural:
    """The exact natural direction that the sampled ``npg`` step estimates.

    Run under ``jax.enable_x64(True)`` with a float64 ``theta`` for exact results.

    Args:
      mdp: a tabular MDP (the policy is :func:`~jaxpg.variance.tabular.softmax_policy`).
      theta: ``[S, A]`` policy parameters.
      estimator: the weights w_t (not a group kind); ``baseline``/``vpg`` need
        ``value_table``.
      damping: λ of F + λI.
      normalize: the weights are normalised by their batch mean and std (the
        ``npg``/``trpo`` default, ``Config.normalize``).
      cg_iters: CG iterations, for the ``ceiling``.
      value_table: ``[S]`` tabular critic V(s).

    Returns:
      :class:`ExactNatural`.
    """
    if estimator.grouped:
        raise ValueError(
            f"estimator={estimator.kind!r} is a group kind; allowed: reinforce, "
            "reward_to_go, baseline, vpg"
        )
    enum = tabular.enumerate_trajectories(mdp, dtype=np.dtype(theta.dtype))
    pool = enum.pool
    probs = tabular.trajectory_probs(enum, theta)
    occupancy = probs[None, :] * pool.mask  # [H, n]: p(τ) for each real step
    steps = jnp.sum(occupancy)  # E|τ|
    obs = pool.obs.reshape(-1, pool.obs.shape[-1])
    per_step = jax.vmap(lambda o: _state_fisher(tabular.softmax_policy, theta, o))(obs)
    fisher = jnp.einsum("k,kij->ij", occupancy.reshape(-1), per_step) / steps
    grad = tabular.exact_moments(enum, theta, estimator, value_table).mean / steps
    if normalize:
        values, next_values = gradients.critic_values(
            tabular.table_value if value_table is not None else None, value_table, pool
        )
        w = gradients.episode_weights(estimator, pool, values, next_values)
        mu = jnp.sum(occupancy * w) / steps
        sigma = jnp.sqrt(jnp.sum(occupancy * (w - mu) ** 2) / steps)
        grad = grad / sigma
    a = fisher + damping * jnp.eye(fisher.shape[0], dtype=fisher.dtype)
    direction = jnp.linalg.solve(a, grad)
    cg = natural.conjugate_gradient(lambda v: a @ v, grad, cg_iters).x
    ceiling = cg @ direction / (jnp.linalg.norm(cg) * jnp.linalg.norm(direction))
    return ExactNatural(fisher, grad, direction, ceiling)


def _direction(key, n, theta, env_params, static) -> Array:
    """The trainer's ``npg`` step on N fresh complete episodes, flattened ``[d]``.

    ``N_max`` episodes are rolled out and those after the first ``n`` (traced)
    are masked out: every statistic of the step (weight normalisation,
    surrogate, mean KL) is a masked mean, so this is the step on n episodes,
    and one compiled program serves every N.
    """
    env, spec, horizon, n_max, est, normalize, damping, cg_iters, value_table = static
    trans = rollout.rollout_episodes(
        key, tabular.softmax_policy, theta, env, env_params, spec, n_max, horizon
    )
    trans = trans._replace(mask=trans.mask * (jnp.arange(n_max) < n)[None, :])
    values, next_values = gradients.critic_values(
        tabular.table_value if value_table is not None else None,
        None if value_table is None else jnp.asarray(value_table, jnp.float32),
        trans,
    )
    w = gradients.episode_weights(est, trans, values, next_values)
    psi = estimators.normalize(w, trans.mask) if normalize else w
    batch = natural.PolicyBatch(trans.obs, trans.action, trans.log_prob, psi, trans.mask)
    new, _ = natural.trust_region_step(
        tabular.softmax_policy,
        theta,
        batch,
        0.01,  # δ only scales the step
        cg_iters=cg_iters,
        damping=damping,
        line_search_on=False,
    )
    return (new - theta).reshape(-1)


@functools.partial(jax.jit, static_argnums=(4,))
def _directions(keys, sizes, theta, env_params, static) -> Array:
    """``[n, R, d]`` steps: ``lax.map`` over the n batch sizes, ``vmap`` over R keys."""

    def per_size(x):
        k, n = x
        return jax.vmap(lambda kk: _direction(kk, n, theta, env_params, static))(k)

    return jax.lax.map(per_size, (keys, sizes))


def natural_cosines(
    key: Array,
    mdp: tabular.TabularMDP,
    theta: Array,
    batch_sizes: Sequence[int],
    repeats: int = 32,
    *,
    estimator: Estimator = RTG,
    damping: float = 0.1,
    normalize: bool = True,
    cg_iters: int = 10,
    value_table: Array | None = None,
) -> NaturalCosine:
    """Mean cosine (± SE) between the sampled ``npg`` direction and the exact one, per N.

    One compiled program serves every N (each batch rolls out max(N) episodes
    and masks all but N). For each N, R batches of N complete episodes (keys
    ``jax.random.split(jax.random.fold_in(key, N), R)``) each give one
    natural step, computed exactly as training does (weights → optional
    normalisation → :func:`jaxpg.natural.trust_region_step` with Fisher-vector
    products and ``cg_iters`` CG iterations, damping λ); its cosine with
    :func:`exact_natural`'s direction (computed in float64) is averaged over R.

    Args:
      key: PRNG key.
      mdp: a tabular MDP.
      theta: ``[S, A]`` policy parameters.
      batch_sizes: the N values (each ≥ 1).
      repeats: R ≥ 2, batches per N.
      estimator: the weights (not a group kind).
      damping, normalize, cg_iters: the trainer's ``cg_damping``,
        ``normalize`` and ``cg_iters``.
      value_table: ``[S]`` tabular critic for ``baseline``/``vpg``.

    Returns:
      :class:`NaturalCosine` (NumPy arrays, ``exact`` in float64).

    Example:
      >>> import jax, numpy as np
      >>> from jaxpg.variance import tabular
      >>> mdp = tabular.random_layered(0, layers=2)
      >>> theta = np.random.default_rng(1).normal(size=(mdp.num_states, mdp.num_actions))
      >>> out = natural_cosines(jax.random.key(0), mdp, theta, [4, 1024], repeats=8)
      >>> bool(out.mean[1] > out.mean[0])
      True
    """
    gradients.check_kind(estimator.kind)
    sizes = np.array(sorted({int(n) for n in batch_sizes}))
    if len(sizes) == 0 or sizes[0] < 1:
        raise ValueError(f"batch_sizes={list(batch_sizes)} is invalid; allowed: integers >= 1")
    if repeats < 2:
        raise ValueError(f"repeats={repeats} is invalid; allowed: >= 2")
    if estimator.uses_critic and value_table is None:
        raise ValueError(f"estimator={estimator.kind!r} needs value_table")
    theta64 = np.asarray(theta, np.float64)
    table64 = None if value_table is None else np.asarray(value_table, np.float64)
    with jax.enable_x64(True):
        exact = exact_natural(
            mdp,
            jnp.asarray(theta64),
            estimator,
            damping=damping,
            normalize=normalize,
            cg_iters=cg_iters,
            value_table=None if table64 is None else jnp.asarray(table64),
        )
        exact = jax.tree.map(np.asarray, exact)
    env = tabular.TabularEnv(mdp)
    env_params = env.default_params
    spec = envs.env_spec(env, env_params)
    table = None if table64 is None else tuple(float(v) for v in table64)
    target = exact.direction / np.linalg.norm(exact.direction)
    theta32 = jnp.asarray(theta64, jnp.float32)
    n_max = int(sizes[-1])
    static = (env, spec, mdp.horizon, n_max, estimator, normalize, damping, cg_iters, table)
    keys = jnp.stack([jax.random.split(jax.random.fold_in(key, int(n)), repeats) for n in sizes])
    d = _directions(keys, jnp.asarray(sizes, jnp.int32), theta32, env_params, static)
    d = np.asarray(d, np.float64)  # [n, R, d]
    cos = d @ target / np.maximum(np.linalg.norm(d, axis=-1), 1e-30)
    return NaturalCosine(sizes, cos.mean(1), cos.std(1, ddof=1) / np.sqrt(repeats), cos, exact)
