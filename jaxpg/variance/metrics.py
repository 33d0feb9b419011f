"""Bias and variance metrics from per-trajectory gradients ``[K, d]``.

Notation: ĝ_i ``[d]`` is trajectory i's gradient estimate, ĝ̄ the pool mean, K
the pool size, g_ref the reference gradient from a *disjoint* pool (pitfall 14;
pitfall numbers refer to the list in ``docs/variance.md``).

* tr Σ₁ = (1/(K−1)) Σ_i ‖ĝ_i − ĝ̄‖², the per-trajectory covariance trace; a
  batch of N independent trajectories has tr Σ_N = tr Σ₁ / N.
* ‖g‖² is estimated without the noise bias: ‖ĝ̄‖² − tr Σ₁/K (pitfall 7).
* Noise scale B = tr Σ₁ / ‖g‖² (in trajectories); SNR at N is N / B. For an
  unbiased estimator in high dimension the mean pairwise cosine of two batch
  estimates is ≈ N/(N+B), the cosine to the truth ≈ √(N/(N+B)) and the
  relative L2 error ≈ √(B/N), so cos ≥ 0.9 needs N ≈ 4.26·B.
* Batch metrics use M = min(max_batches, ⌊K/N⌋) disjoint batches of the pool.
* Bootstrap intervals are percentile intervals from a seeded NumPy generator.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


class PoolStats(NamedTuple):
    count: int
    mean: Array  # [d]
    var: Array  # [d] per-coordinate variance (ddof 1)
    trace: Array  # tr Σ₁

    @property
    def signal_sq(self) -> Array:
        """Unbiased ‖E ĝ‖² estimate ‖ĝ̄‖² − tr Σ₁/K."""
        return jnp.sum(self.mean**2) - self.trace / self.count


def pool_stats(grads: Array) -> PoolStats:
    """Mean, per-coordinate variance and tr Σ₁ of ``[K, d]`` gradients.

    Example:
      >>> import jax.numpy as jnp
      >>> s = pool_stats(jnp.array([[1.0, 0.0], [3.0, 2.0]]))  # var 2 and 2
      >>> float(s.trace)
      4.0
    """
    k = grads.shape[0]
    mean = jnp.mean(grads, axis=0)
    var = jnp.sum((grads - mean) ** 2, axis=0) / max(k - 1, 1)
    return PoolStats(k, mean, var, jnp.sum(var))


def batch_means(grads: Array, n: int, max_batches: int) -> Array:
    """Means of M = min(max_batches, ⌊K/n⌋) disjoint batches of n: ``[M, d]``."""
    m = min(max_batches, grads.shape[0] // n)
    if m < 1:
        raise ValueError(f"batch size {n} exceeds the pool of {grads.shape[0]} trajectories")
    return jnp.mean(grads[: m * n].reshape(m, n, -1), axis=1)


def cosine_matrix(x: Array) -> np.ndarray:
    """Pairwise cosines of the rows of ``x`` ``[M, d]`` → ``[M, M]`` (float64)."""
    x = np.asarray(x, np.float64)
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
    return unit @ unit.T


def mean_offdiag(c: np.ndarray, idx: np.ndarray | None = None) -> float:
    """Mean of c[i, j] over pairs of distinct original batches (after resampling)."""
    if idx is None:
        idx = np.arange(c.shape[0])
    sub = c[np.ix_(idx, idx)]
    distinct = idx[:, None] != idx[None, :]
    return float(sub[distinct].mean()) if distinct.any() else float("nan")


def bootstrap_ci(
    values_fn, m: int, rng: np.random.Generator, resamples: int, level: float = 0.95
) -> tuple[float, float]:
    """Percentile CI of ``values_fn(idx)`` over resamples of ``range(m)``."""
    stats = np.array([values_fn(rng.integers(0, m, m)) for _ in range(resamples)])
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def batch_metrics(
    grads: Array,
    n: int,
    g_ref: Array,
    *,
    max_batches: int = 32,
    rng: np.random.Generator,
    resamples: int = 500,
) -> dict:
    """Metrics of the batch estimate at batch size ``n``.

    Returns:
      dict with ``N``, ``M``, ``pairwise_cos`` (+ ``_lo``/``_hi`` 95% bootstrap CI
      over batches), ``cos_ref`` (+ CI), ``rel_err`` ‖ḡ_m − g_ref‖/‖g_ref‖ (+ CI)
      and ``tr_sigma_N`` (the empirical trace over the M batches, NaN if M < 2).
    """
    means = batch_means(grads, n, max_batches)
    m = means.shape[0]
    x = np.asarray(means, np.float64)
    ref = np.asarray(g_ref, np.float64)
    ref_norm = np.linalg.norm(ref)
    cos_ref = x @ ref / np.maximum(np.linalg.norm(x, axis=1) * ref_norm, 1e-300)
    rel_err = np.linalg.norm(x - ref, axis=1) / ref_norm
    out = {"N": n, "M": m, "cos_ref": float(cos_ref.mean()), "rel_err": float(rel_err.mean())}
    for name, vals in (("cos_ref", cos_ref), ("rel_err", rel_err)):
        out[name + "_lo"], out[name + "_hi"] = bootstrap_ci(
            lambda i, v=vals: v[i].mean(), m, rng, resamples
        )
    if m >= 2:
        c = cosine_matrix(x)
        out["pairwise_cos"] = mean_offdiag(c)
        out["pairwise_cos_lo"], out["pairwise_cos_hi"] = bootstrap_ci(
            lambda i: mean_offdiag(c, i), m, rng, resamples
        )
        out["tr_sigma_N"] = float(np.sum(np.var(x, axis=0, ddof=1)))
    else:
        out.update(
            pairwise_cos=float("nan"),
            pairwise_cos_lo=float("nan"),
            pairwise_cos_hi=float("nan"),
            tr_sigma_N=float("nan"),
        )
    return out


def layer_variances(var: Array, layers: list[tuple[str, int, int]]) -> dict[str, float]:
    """Σ of per-coordinate variances within each parameter leaf (pitfall 6)."""
    v = np.asarray(var, np.float64)
    return {name: float(v[a:b].sum()) for name, a, b in layers}


def projection_z(grads: Array, ref_proj: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """z-scores of the pool mean against the reference pool along directions.

    z_k = (mean_i ĝ_i·v_k − mean_j g^ref_j·v_k) / √(Var(ĝ·v_k)/K + Var(g^ref·v_k)/K_ref).

    Args:
      grads: ``[K, d]`` per-trajectory gradients of the tested estimator.
      ref_proj: ``[K_ref, D]`` reference-pool gradients projected on ``dirs``.
      dirs: ``[d, D]`` directions.

    Returns:
      ``[D]`` z-scores.
    """
    p = np.asarray(grads @ jnp.asarray(dirs, grads.dtype), np.float64)
    se2 = p.var(axis=0, ddof=1) / p.shape[0] + ref_proj.var(axis=0, ddof=1) / ref_proj.shape[0]
    return (p.mean(axis=0) - ref_proj.mean(axis=0)) / np.sqrt(np.maximum(se2, 1e-300))


def bootstrap_traces(grads: Array, counts: np.ndarray) -> np.ndarray:
    """tr Σ₁ of each bootstrap resample given multinomial ``counts`` ``[R, K]``.

    Uses the same counts for every estimator, so ratios are paired.
    """
    k = grads.shape[0]
    w = jnp.asarray(counts, grads.dtype) / k
    sq = jnp.sum(grads**2, axis=1)
    mean_sq = w @ sq
    means = w @ grads
    return np.asarray((mean_sq - jnp.sum(means**2, axis=1)) * k / (k - 1), np.float64)


def estimator_summary(grads: Array, g_ref: Array, ref_trace: float, ref_count: int) -> dict:
    """Whole-pool metrics of one estimator against the reference.

    Returns:
      dict with ``tr_sigma1``, ``tr_sigma1_per_d``, ``signal_sq`` (unbiased ‖E ĝ‖²),
      ``B`` (tr Σ₁/‖E ĝ‖²), ``B_ref`` (tr Σ₁/‖g‖² with ‖g‖² = ‖g_ref‖² − tr Σ_ref/K_ref),
      ``scale_ratio`` = ĝ̄·g_ref/‖g_ref‖²
      and its ``scale_ratio_se``, ``rel_bias`` (debiased ‖E ĝ − g_ref‖/‖g_ref‖, NaN
      when noise dominates), ``rel_bias_noise`` (the ‖ĝ̄ − g_ref‖/‖g_ref‖ that noise
      alone would give), ``median_var``, ``max_var`` and ``snr_param_median``
      (median over coordinates of |g_ref,j|/σ_j at N = 1).
    """
    s = pool_stats(grads)
    ref = jnp.asarray(g_ref, grads.dtype)
    ref_sq = float(jnp.sum(ref**2))
    ref_sq_unbiased = ref_sq - ref_trace / ref_count  # pitfall 7, for the reference too
    proj = np.asarray(grads @ ref, np.float64) / ref_sq
    diff_sq = float(jnp.sum((s.mean - ref) ** 2))
    noise_sq = float(s.trace) / s.count + ref_trace / ref_count
    bias_sq = diff_sq - noise_sq
    sigma = np.sqrt(np.maximum(np.asarray(s.var, np.float64), 1e-300))
    return {
        "tr_sigma1": float(s.trace),
        "tr_sigma1_per_d": float(s.trace) / grads.shape[1],
        "signal_sq": float(s.signal_sq),
        "B": float(s.trace / s.signal_sq) if s.signal_sq > 0 else float("inf"),
        "B_ref": float(s.trace) / ref_sq_unbiased if ref_sq_unbiased > 0 else float("inf"),
        "scale_ratio": float(proj.mean()),
        "scale_ratio_se": float(proj.std(ddof=1) / np.sqrt(s.count)),
        "rel_bias": float(np.sqrt(bias_sq / ref_sq)) if bias_sq > 0 else float("nan"),
        "rel_bias_noise": float(np.sqrt(noise_sq / ref_sq)),
        "median_var": float(np.median(np.asarray(s.var))),
        "max_var": float(np.max(np.asarray(s.var))),
        "snr_param_median": float(np.median(np.abs(np.asarray(ref, np.float64)) / sigma)),
    }
