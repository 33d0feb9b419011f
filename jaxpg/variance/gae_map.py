"""The GAE (γ, λ) map: bias against T1, variance and their MSE on one pool.

For each (γ, λ) the estimator is GAE(γ, λ) with the checkpoint's critic V_φ
(common discounting, no γ^t factor, as PPO trains), computed on the same test
pool as every other estimator. Against the T1 reference g_ref (disjoint pool):

* relative bias² = (‖ĝ̄ − g_ref‖² − tr Σ₁/K − tr Σ_ref/K_ref)/‖g_ref‖², the
  noise-debiased squared distance (it can come out negative when noise
  explains all of it; the map shows it clipped at 0);
* relative variance at N trajectories = tr Σ₁/(N‖g_ref‖²);
* relative MSE at N = bias² + variance, the expected ‖ḡ_N − ∇J‖²/‖∇J‖².

N is chosen as the number of trajectories holding about ``pairs`` state-action
pairs at this checkpoint's mean episode length (2,048 by default, Ilyas et al.'s
marker).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from jaxpg.variance import gradients, metrics
from jaxpg.variance.gradients import Estimator


def measure(
    policy_apply: Callable,
    policy_params: Any,
    pool,
    g_ref: jax.Array,
    ref_trace: float,
    ref_count: int,
    gammas: Sequence[float],
    lambdas: Sequence[float],
    *,
    value_apply: Callable,
    value_params: Any,
    pairs: int = 2048,
    chunk_size: int = 256,
) -> dict:
    """Bias, variance and MSE of GAE(γ, λ) on a grid.

    Args:
      policy_apply, policy_params: the frozen policy.
      pool: ``[T, K]`` complete episodes (the test pool).
      g_ref: ``[d]`` the T1 reference gradient; ``ref_trace``/``ref_count`` its
        pool's tr Σ₁ and size (for the debiasing).
      gammas, lambdas: the grid.
      value_apply, value_params: the critic V_φ.
      pairs: state-action pairs per batch for the MSE (N = pairs / mean length).
      chunk_size: trajectories per vmapped gradient chunk.

    Returns:
      dict with ``gammas``, ``lambdas``, ``N``, and ``[len(gammas), len(lambdas)]``
      lists ``rel_bias_sq``, ``rel_bias_sq_noise`` (the noise floor subtracted),
      ``rel_var_N``, ``rel_mse_N``, ``tr_sigma1``, ``cos_mean`` (cosine of the
      pool mean to g_ref) and ``scale_ratio``; the relative entries are NaN when
      the debiased ‖g_ref‖² (``ref_norm_sq_debiased``) is ≤ 0.
    """
    k = pool.mask.shape[1]
    mean_len = float(np.asarray(pool.mask).sum() / k)
    n = max(1, round(pairs / mean_len))
    ests = [
        Estimator("vpg", float(g), float(lam), label=f"{g:g}/{lam:g}")
        for g in gammas
        for lam in lambdas
    ]
    grads = gradients.pool_gradients(
        policy_apply,
        policy_params,
        pool,
        ests,
        value_apply=value_apply,
        value_params=value_params,
        chunk_size=chunk_size,
    )
    ref = np.asarray(g_ref, np.float64)
    ref_sq = float(ref @ ref) - ref_trace / ref_count
    keys = ("rel_bias_sq", "rel_bias_sq_noise", "rel_var_N", "rel_mse_N", "tr_sigma1")
    out: dict = {k_: [] for k_ in (*keys, "cos_mean", "scale_ratio")}
    for g in gammas:
        row = {k_: [] for k_ in out}
        for lam in lambdas:
            s = metrics.pool_stats(grads[f"{g:g}/{lam:g}"])
            mean = np.asarray(s.mean, np.float64)
            tr = float(s.trace)
            noise = tr / k + ref_trace / ref_count
            bias_sq = (float((mean - ref) @ (mean - ref)) - noise) / ref_sq
            var_n = tr / n / ref_sq
            row["rel_bias_sq"].append(bias_sq)
            row["rel_bias_sq_noise"].append(noise / ref_sq)
            row["rel_var_N"].append(var_n)
            row["rel_mse_N"].append(max(bias_sq, 0.0) + var_n)
            row["tr_sigma1"].append(tr)
            row["cos_mean"].append(float(mean @ ref / np.linalg.norm(mean) / np.sqrt(ref @ ref)))
            row["scale_ratio"].append(float(mean @ ref / (ref @ ref)))
        for k_ in out:
            out[k_].append(row[k_])
    if ref_sq <= 0:  # ‖∇J‖² is within noise (a saturated policy, pitfall 9): no scale
        for k_ in keys:
            out[k_] = (
                [[float("nan")] * len(lambdas) for _ in gammas] if k_ != "tr_sigma1" else out[k_]
            )
    out.update(gammas=list(map(float, gammas)), lambdas=list(map(float, lambdas)), N=n)
    out["ref_norm_sq_debiased"] = ref_sq
    out["pairs"] = pairs
    out["mean_length"] = mean_len
    return out
