"""Same-batch baselines: weights that depend on the batch they are applied to.

The pool ``[T, K]`` is cut into M = ⌊K/N⌋ disjoint batches of N consecutive
trajectories. G_{i,t} is trajectory i's reward-to-go (0 after its end).

* ``mean``: w_{i,t} = G_{i,t} − (1/N) Σ_j G_{j,t} over the batch *including* i.
  Since E[∇log π_{i,t} G_{j,t}] = 0 for j ≠ i, the batch estimate's
  expectation is exactly (1 − 1/N) ∇J (``docs/variance.md``, pitfall 2).
* ``loo``: w_{i,t} = G_{i,t} − (1/(N−1)) Σ_{j≠i} G_{j,t}, unbiased. Algebra:
  it equals N/(N−1) times the ``mean`` weight, so the rescaling undoes the bias.
* ``refit``: w_{i,t} = G_{i,t} − V_ψ(s_{i,t}, t) with V_ψ a ridge least-squares
  fit of G on features [1, s, s², t/T, (t/T)²] over the batch's own steps,
  the "refit the critic, then compute advantages" pattern; biased, most at
  small N.
* :func:`ppo_weights` (E5a): PPO's per-batch advantage normalisation and
  per-step mean, the gradient of its surrogate at θ = θ_old.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxpg import rollout

Array = jax.Array
BATCH_BASELINES = ("mean", "loo", "refit")


def _batched(x: Array, n: int) -> Array:
    """``[T, K, ...]`` → ``[T, M, n, ...]`` (drops the K − M·n leftover columns)."""
    m = x.shape[1] // n
    return x[:, : m * n].reshape((x.shape[0], m, n) + x.shape[2:])


def _unbatched(x: Array) -> Array:
    return x.reshape((x.shape[0], -1) + x.shape[3:])


def mean_weights(rtg: Array, n: int, leave_one_out: bool) -> Array:
    """Batch-mean baseline weights ``[T, M·n]`` (``leave_one_out`` for ``loo``)."""
    if leave_one_out and n < 2:
        raise ValueError("a leave-one-out baseline needs batches of N >= 2")
    g = _batched(rtg, n)
    w = g - jnp.mean(g, axis=2, keepdims=True)
    if leave_one_out:
        w = w * (n / (n - 1.0))
    return _unbatched(w)


def features(obs: Array, horizon: int) -> Array:
    """[1, s, s², t/T, (t/T)²] per step: ``[T, K, obs] -> [T, K, 2·obs + 3]``."""
    t = jnp.arange(obs.shape[0], dtype=obs.dtype)[:, None, None] / horizon
    t = jnp.broadcast_to(t, obs.shape[:2] + (1,))
    return jnp.concatenate([jnp.ones_like(t), obs, obs**2, t, t**2], axis=-1)


def _fit_batch(phi: Array, g: Array, mask: Array, ridge: float) -> Array:
    """Ridge LS on one batch: β = (Σ m φφᵀ + ridge I)⁻¹ Σ m φ G; returns V = φβ."""
    f = phi.reshape(-1, phi.shape[-1])
    m = mask.reshape(-1)
    a = (f * m[:, None]).T @ f + ridge * jnp.eye(f.shape[1], dtype=f.dtype)
    beta = jnp.linalg.solve(a, (f * m[:, None]).T @ g.reshape(-1))
    return phi @ beta


def refit_weights(pool: rollout.Transition, rtg: Array, n: int, ridge: float = 1e-3) -> Array:
    """Weights G − V_ψ with V_ψ refit on each batch of n: ``[T, M·n]``."""
    phi = _batched(features(pool.obs, pool.obs.shape[0]), n)
    g, mask = _batched(rtg, n), _batched(pool.mask, n)
    v = jax.vmap(_fit_batch, in_axes=(1, 1, 1, None), out_axes=1)(phi, g, mask, ridge)
    return _unbatched(g - v)


def ppo_weights(adv: Array, mask: Array, n: int, eps: float = 1e-8) -> Array:
    """E5a: PPO's gradient at θ = θ_old, written as per-trajectory weights ``[T, M·n]``.

    At ratio 1 the clip is inactive, so ∇ of the clipped surrogate on a batch is
    (1/Σ_j T_j) Σ_{i,t} ∇log π(a_it|s_it) Â_it, with Â = (A − mean)/(std + eps)
    normalised over the batch's steps (pitfall 3, 11). Weights
    w_it = n Â_it / Σ_j T_j make the mean of the n per-trajectory terms equal to
    that gradient. Its scale depends on the episode lengths, so compare it
    through cosines only.
    """
    a, m = _batched(adv, n), _batched(mask, n)
    count = jnp.sum(m, axis=(0, 2), keepdims=True)
    mean = jnp.sum(a * m, axis=(0, 2), keepdims=True) / count
    std = jnp.sqrt(jnp.sum((a - mean) ** 2 * m, axis=(0, 2), keepdims=True) / count)
    return _unbatched((a - mean) / (std + eps) * (n / count))


def batch_weights(kind: str, pool: rollout.Transition, rtg: Array, n: int) -> Array:
    """Dispatch on ``kind`` in :data:`BATCH_BASELINES`."""
    if kind == "mean":
        return mean_weights(rtg, n, leave_one_out=False)
    if kind == "loo":
        return mean_weights(rtg, n, leave_one_out=True)
    if kind == "refit":
        return refit_weights(pool, rtg, n)
    raise ValueError(f"batch baseline {kind!r} is unknown; allowed: {', '.join(BATCH_BASELINES)}")


def truncate_pool(pool: rollout.Transition, n: int) -> rollout.Transition:
    """The first M·n trajectories of the pool (those the batch weights cover)."""
    m = pool.mask.shape[1] // n
    return jax.tree.map(lambda x: x[:, : m * n], pool)
