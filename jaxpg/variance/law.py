"""R4, the 1/N law: batch means of disjoint batches from one streamed pool.

For an estimator whose per-trajectory terms are independent, the covariance
of the mean of N trajectories is Σ₁/N, so N·tr Σ_N / tr Σ₁ = 1 for every N.
Measuring tr Σ_N as tr Σ₁/N would prove nothing; R4 needs the spread of
*disjoint* batch means, and enough of them at every N.

The pool is drawn in chunks of C trajectories (chunk j from ``fold_in(key, j)``,
one key per trajectory within it), per-trajectory gradients are formed chunk by chunk
and reduced at once, so memory is O(C·T + Σ_N M_N·d), never O(K·d):

* batch N (a power of two) is a run of N consecutive trajectories; for N ≤ C
  a chunk holds C/N whole batches, for N > C a batch is the sum of N/C chunks;
* the first M_N = min(max_batches, K/N) batch means are kept ``[M_N, d]``;
* tr Σ₁ comes from streamed sums over all K trajectories, centred on the first
  chunk's mean c₀: tr Σ₁ = (Σ‖g_i − c₀‖² − K‖ḡ − c₀‖²)/(K − 1).

The interval of N·tr Σ_N/tr Σ₁ is a percentile bootstrap over the M_N batch
means (resampled sample-covariance traces, from the Gram matrix), combined
with a normal draw of tr Σ₁ from its own standard error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from jaxpg.variance import gradients, metrics
from jaxpg.variance.gradients import Estimator

Array = jax.Array


def batch_plan(pool_size: int, batch_sizes: Sequence[int], max_batches: int) -> dict[int, int]:
    """``{N: M_N}``, the disjoint batches kept per N (each N must leave 2 or more).

    Example:
      >>> batch_plan(1024, (4, 256), 64)
      {4: 64, 256: 4}
    """
    plan = {}
    for n in sorted(set(int(x) for x in batch_sizes)):
        if n < 1 or n & (n - 1):
            raise ValueError(f"law batch sizes must be powers of two, got {n}")
        m = min(max_batches, pool_size // n)
        if m < 2:
            raise ValueError(
                f"law batch size {n} leaves {m} batch(es) in a pool of {pool_size}; "
                f"allowed: N <= {pool_size // 2}"
            )
        plan[n] = m
    return plan


def _trace_of_cov(gram: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """tr of the sample covariance of resampled rows, from their Gram matrix.

    ``gram`` ``[M, M]``; ``counts`` ``[R, M]`` multinomial counts summing to M.
    """
    m = gram.shape[0]
    sq = counts @ np.diag(gram) / m
    cross = np.einsum("ri,ij,rj->r", counts, gram, counts) / m**2
    return (sq - cross) * m / (m - 1)


def stream_pool(
    key: Array,
    sample: Callable[[Array, int], Any],
    grads_of: Callable[[Any], dict[str, Array]],
    pool_size: int,
    chunk: int,
    plan: dict[int, int],
) -> dict[str, dict]:
    """Stream a pool in chunks and keep what R4 needs, per estimator.

    Args:
      key: pool key; chunk j samples its trajectories with ``fold_in(key, j)``.
      sample: ``(key, n) -> pool`` of n complete episodes.
      grads_of: ``pool -> {name: [n, d]}`` per-trajectory gradients.
      pool_size: K, a multiple of ``chunk``.
      chunk: C, trajectories per chunk (a power of two).
      plan: from :func:`batch_plan`.

    Returns:
      ``{name: {"count", "centre", "sum", "sq", "sq_each", "means": {N: [M_N, d]}}}``
      as NumPy float64 (``sq_each``: ‖g_i − c₀‖² of every trajectory).
    """
    if pool_size % chunk or chunk & (chunk - 1):
        raise ValueError(f"law pool size {pool_size} must be a multiple of the chunk {chunk}")
    acc: dict[str, dict] = {}
    partial: dict[tuple[str, int], list] = {}
    for j in range(pool_size // chunk):
        gs = grads_of(sample(jax.random.fold_in(key, j), chunk))
        for name, g in gs.items():
            g = np.asarray(g, np.float64)
            a = acc.setdefault(
                name,
                {
                    "count": 0,
                    "centre": g.mean(0),
                    "sum": 0.0,
                    "sq": 0.0,
                    "sq_each": [],
                    "means": {},
                },
            )
            c = g - a["centre"]
            a["count"] += g.shape[0]
            a["sum"] = a["sum"] + c.sum(0)
            each = np.sum(c**2, axis=1)
            a["sq"] += float(each.sum())
            a["sq_each"].append(each)
            for n, m in plan.items():
                kept = a["means"].setdefault(n, [])
                if n <= chunk:
                    need = m - sum(x.shape[0] for x in kept)
                    if need > 0:
                        kept.append(g.reshape(chunk // n, n, -1).mean(1)[:need])
                elif sum(x.shape[0] for x in kept) < m:
                    part = partial.setdefault((name, n), [])
                    part.append(g.sum(0))
                    if len(part) * chunk == n:
                        kept.append((np.sum(part, axis=0) / n)[None])
                        part.clear()
    for a in acc.values():
        a["sq_each"] = np.concatenate(a["sq_each"])
        a["means"] = {n: np.concatenate(v) for n, v in a["means"].items()}
    return acc


def law_rows(acc: dict[str, dict], *, rng: np.random.Generator, resamples: int = 500) -> list[dict]:
    """R4 rows: per estimator and N, N·tr Σ_N/tr Σ₁ with its 95% interval.

    Returns:
      one dict per (estimator, N) with ``N``, ``M``, ``tr_sigma1``,
      ``tr_sigma1_se``, ``tr_sigma_N``, ``ratio`` (+ ``_lo``/``_hi``) and
      ``pairwise_cos`` (mean over pairs of distinct batches).
    """
    rows = []
    for name, a in acc.items():
        k = a["count"]
        mean_c = a["sum"] / k
        tr1 = (a["sq"] - k * float(mean_c @ mean_c)) / (k - 1)
        se1 = float(a["sq_each"].std(ddof=1) / np.sqrt(k))
        for n, x in sorted(a["means"].items()):
            m = x.shape[0]
            xc = x - x.mean(0)
            gram = xc @ xc.T
            tr_n = float(np.trace(gram)) / (m - 1)
            counts = rng.multinomial(m, np.full(m, 1.0 / m), size=resamples).astype(np.float64)
            boot = _trace_of_cov(gram, counts) * n / rng.normal(tr1, se1, size=resamples)
            lo, hi = np.quantile(boot, [0.025, 0.975])
            rows.append(
                {
                    "estimator": name,
                    "N": n,
                    "M": m,
                    "pool": k,
                    "tr_sigma1": tr1,
                    "tr_sigma1_se": se1,
                    "tr_sigma_N": tr_n,
                    "ratio": n * tr_n / tr1,
                    "ratio_lo": float(lo),
                    "ratio_hi": float(hi),
                    "pairwise_cos": metrics.mean_offdiag(metrics.cosine_matrix(x)),
                }
            )
    return rows


def verdict(rows: list[dict], n_min: int = 4, tol: float = 0.1) -> dict:
    """R4 per estimator: point ratios within ``tol`` of 1 for N ≥ ``n_min``, the
    intervals too, and pairwise cosine non-decreasing in N."""
    out = {}
    for name in dict.fromkeys(r["estimator"] for r in rows):
        sel = sorted(
            (r for r in rows if r["estimator"] == name and r["N"] >= n_min), key=lambda r: r["N"]
        )
        cos = [r["pairwise_cos"] for r in sel]
        out[name] = {
            "N_range": [sel[0]["N"], sel[-1]["N"]] if sel else None,
            "max_abs_dev": max((abs(r["ratio"] - 1) for r in sel), default=float("nan")),
            "pass": all(abs(r["ratio"] - 1) <= tol for r in sel),
            "ci_within_tol": all(
                r["ratio_lo"] >= 1 - tol and r["ratio_hi"] <= 1 + tol for r in sel
            ),
            "ci_covers_1": all(r["ratio_lo"] <= 1 <= r["ratio_hi"] for r in sel),
            "pairwise_cos_monotone": bool(np.all(np.diff(cos) >= -1e-12)),
        }
    return out


def measure(
    key: Array,
    env,
    env_params,
    policy_apply: Callable,
    policy_params: Any,
    estimators_: Sequence[Estimator],
    *,
    pool_size: int,
    batch_sizes: Sequence[int],
    max_batches: int,
    chunk: int = 1024,
    value_apply: Callable | None = None,
    value_params: Any = None,
    grad_chunk: int = 256,
    rng: np.random.Generator,
    resamples: int = 500,
) -> tuple[list[dict], dict]:
    """Draw a pool of ``pool_size`` complete episodes in chunks and test R4.

    Returns:
      ``(rows, verdict)`` from :func:`law_rows` and :func:`verdict`.
    """
    plan = batch_plan(pool_size, batch_sizes, max_batches)
    chunk = min(chunk, pool_size)

    def sample(k, n):
        pool = gradients.sample_episodes(
            k, env, env_params, policy_apply, policy_params, n, chunk_size=grad_chunk
        )
        return gradients.trim_pool(pool)

    def grads_of(pool):
        return gradients.pool_gradients(
            policy_apply,
            policy_params,
            pool,
            estimators_,
            value_apply=value_apply,
            value_params=value_params,
            chunk_size=grad_chunk,
        )

    acc = stream_pool(key, sample, grads_of, pool_size, chunk, plan)
    rows = law_rows(acc, rng=rng, resamples=resamples)
    return rows, verdict(rows)
