"""Statistics over seeds: mean, standard error, bootstrap CI, IQM and a ranking.

Host-side NumPy on small arrays (one value per seed). Conventions:

* ``x`` is a 1-D array of per-seed values; NaNs (a run whose episodes never
  ended) are dropped first and ``n`` counts the finite values left.
* The standard error uses the sample standard deviation (``ddof=1``).
* The bootstrap CI is the percentile interval of the mean over resamples drawn
  with a fixed seed, so the same values always give the same interval.
* The interquartile mean (IQM) is the mean of the middle 50% after removing
  ``floor(0.25 n)`` values from each end (``scipy.stats.trim_mean(x, 0.25)``);
  its interval is the same percentile bootstrap applied to the IQM.
* The final return of a run (:func:`final_return`) is the mean of its
  per-update mean episode returns over the last 5% of updates (at least one),
  NaN updates (no episode ended) left out; ``jaxpg train`` (``summary.json``)
  and ``jaxpg sweep`` (``sweep.csv``, ``summary.csv``) both use it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

CONFIDENCE = 0.95
NUM_RESAMPLES = 10_000


def _finite(x: ArrayLike) -> np.ndarray:
    x = np.asarray(x, np.float64).reshape(-1)
    return x[np.isfinite(x)]


def standard_error(x: ArrayLike) -> float:
    """Standard error of the mean: ``std(x, ddof=1) / sqrt(n)``.

    Args:
      x: ``[n]`` values; NaNs are ignored.

    Returns:
      The standard error, or NaN when fewer than two finite values remain.

    Example:
      >>> standard_error([1.0, 2.0, 3.0, 4.0])  # std = sqrt(5/3); / 2
      0.6454972243679028
    """
    x = _finite(x)
    if x.size < 2:
        return math.nan
    return float(np.std(x, ddof=1) / math.sqrt(x.size))


def interquartile_mean(x: ArrayLike) -> float:
    """Mean of the middle 50%: drop ``floor(n/4)`` values at each end, average the rest.

    Args:
      x: ``[n]`` values; NaNs are ignored.

    Returns:
      The IQM (NaN for no finite values).

    Example:
      >>> interquartile_mean([1.0, 2.0, 3.0, 4.0, 100.0, -50.0, 5.0, 6.0])  # mean(2..5)
      3.5
    """
    x = np.sort(_finite(x))
    if x.size == 0:
        return math.nan
    k = int(math.floor(0.25 * x.size))
    return float(np.mean(x[k : x.size - k]))


def final_window(num_updates: int) -> int:
    """How many of the last updates :func:`final_return` averages: 5%, at least one.

    Args:
      num_updates: U, updates in the run.

    Returns:
      ``min(U, max(1, U // 20))``.

    Example:
      >>> final_window(100), final_window(19), final_window(0)
      (5, 1, 0)
    """
    return min(num_updates, max(1, num_updates // 20))


def final_return(episode_return: ArrayLike) -> float:
    """A run's final return: the mean of the last 5% of its per-update returns.

    The same definition for ``jaxpg train`` and ``jaxpg sweep``; averaging a
    window rather than taking the last update lowers the noise of one update's
    few episodes.

    Args:
      episode_return: ``[U]`` per-update mean episode return (NaN for an update
        in which no episode ended).

    Returns:
      The mean of the finite values among the last ``final_window(U)``
      updates; NaN when there are none.

    Example:
      >>> final_return([0.0] * 95 + [1.0, 2.0, float("nan"), 3.0, 4.0])  # 5 of 100
      2.5
    """
    x = np.asarray(episode_return, np.float64).reshape(-1)
    tail = _finite(x[x.size - final_window(x.size) :])
    return float(tail.mean()) if tail.size else math.nan


def bootstrap_ci(
    x: ArrayLike,
    *,
    confidence: float = CONFIDENCE,
    num_resamples: int = NUM_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean.

    Draws ``num_resamples`` resamples of size n with replacement (NumPy
    generator seeded with ``seed``) and returns the ``(1 ± confidence)/2``
    quantiles of their means.

    Args:
      x: ``[n]`` values; NaNs are ignored.
      confidence: coverage of the interval, in (0, 1).
      num_resamples: bootstrap resamples.
      seed: seed of the resampling generator.

    Returns:
      ``(low, high)``; ``(v, v)`` for a single value, NaNs for none.

    Example:
      >>> bootstrap_ci([2.0, 2.0, 2.0])
      (2.0, 2.0)
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} must lie in (0, 1)")
    x = _finite(x)
    if x.size == 0:
        return (math.nan, math.nan)
    means = bootstrap_means(x[:, None], num_resamples=num_resamples, seed=seed)[:, 0]
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return (float(low), float(high))


def iqm_bootstrap_ci(
    x: ArrayLike,
    *,
    confidence: float = CONFIDENCE,
    num_resamples: int = NUM_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the interquartile mean.

    Like :func:`bootstrap_ci`, with each resample's IQM in place of its mean
    (Agarwal et al., 2021, "Deep RL at the edge of the statistical precipice",
    recommend the IQM with such an interval for few seeds).

    Args:
      x: ``[n]`` values; NaNs are ignored.
      confidence: coverage of the interval, in (0, 1).
      num_resamples: bootstrap resamples.
      seed: seed of the resampling generator.

    Returns:
      ``(low, high)``; ``(v, v)`` for a single value, NaNs for none.

    Example:
      >>> iqm_bootstrap_ci([3.0, 3.0, 3.0, 3.0])
      (3.0, 3.0)
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} must lie in (0, 1)")
    x = _finite(x)
    if x.size == 0:
        return (math.nan, math.nan)
    idx = np.random.default_rng(seed).integers(0, x.size, (num_resamples, x.size))
    resamples = np.sort(x[idx], axis=1)
    k = int(math.floor(0.25 * x.size))
    iqms = resamples[:, k : x.size - k].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(iqms, [alpha, 1.0 - alpha])
    return (float(low), float(high))


def bootstrap_means(
    x: np.ndarray, *, num_resamples: int = NUM_RESAMPLES, seed: int = 0
) -> np.ndarray:
    """Means of bootstrap resamples of the rows of ``x`` (NaN-aware).

    Args:
      x: ``[n, ...]``, e.g. per-seed learning curves ``[n, U]``.
      num_resamples: resamples B.
      seed: generator seed.

    Returns:
      ``[B, ...]`` means over each resample's rows (NaNs ignored).
    """
    x = np.asarray(x, np.float64)
    idx = np.random.default_rng(seed).integers(0, x.shape[0], (num_resamples, x.shape[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x[idx], axis=1)


def summarize(
    x: ArrayLike,
    *,
    confidence: float = CONFIDENCE,
    num_resamples: int = NUM_RESAMPLES,
    seed: int = 0,
) -> dict:
    """All the statistics of one grid point's per-seed values.

    Args:
      x: ``[n]`` per-seed values (NaNs ignored).
      confidence: bootstrap CI coverage.
      num_resamples: bootstrap resamples.
      seed: bootstrap seed.

    Returns:
      ``{"n", "mean", "sem", "ci_low", "ci_high", "iqm", "iqm_ci_low",
      "iqm_ci_high", "median", "min", "max"}``; both intervals are percentile
      bootstrap intervals with the same resamples' seed.

    Example:
      >>> s = summarize([1.0, 2.0, 3.0, 4.0])
      >>> s["n"], s["mean"], s["iqm"]
      (4, 2.5, 2.5)
    """
    f = _finite(x)
    low, high = bootstrap_ci(f, confidence=confidence, num_resamples=num_resamples, seed=seed)
    iqm_low, iqm_high = iqm_bootstrap_ci(
        f, confidence=confidence, num_resamples=num_resamples, seed=seed
    )
    empty = f.size == 0
    return {
        "n": int(f.size),
        "mean": math.nan if empty else float(np.mean(f)),
        "sem": standard_error(f),
        "ci_low": low,
        "ci_high": high,
        "iqm": interquartile_mean(f),
        "iqm_ci_low": iqm_low,
        "iqm_ci_high": iqm_high,
        "median": math.nan if empty else float(np.median(f)),
        "min": math.nan if empty else float(np.min(f)),
        "max": math.nan if empty else float(np.max(f)),
    }


def rank(means: Sequence[float], tiebreak: Sequence[float] | None = None) -> list[int]:
    """Rank grid points by mean, best (highest) first; rank 1 is the best.

    NaN means rank last. Ties are broken by ``tiebreak`` (higher is better,
    e.g. the IQM), then by position.

    Args:
      means: ``[P]`` mean final returns.
      tiebreak: optional ``[P]`` secondary key.

    Returns:
      ``[P]`` ranks, a permutation of ``1..P``.

    Example:
      >>> rank([1.0, 3.0, float("nan"), 2.0])
      [3, 1, 4, 2]
    """
    means = [(-m if math.isfinite(m) else math.inf) for m in map(float, means)]
    tb = (
        [0.0] * len(means)
        if tiebreak is None
        else [(-t if math.isfinite(t) else math.inf) for t in map(float, tiebreak)]
    )
    order = sorted(range(len(means)), key=lambda i: (means[i], tb[i], i))
    ranks = [0] * len(means)
    for r, i in enumerate(order, start=1):
        ranks[i] = r
    return ranks


# -- across tasks ----------------------------------------------------------------
# Scores are given per task: a sequence of M 1-D arrays, task m holding its runs'
# final returns (the tasks may have different run counts). These follow Agarwal et
# al. (2021), "Deep RL at the edge of the statistical precipice" (rliable).


def normalized_scores(x: ArrayLike, low: float, high: float) -> np.ndarray:
    """Min-max normalised scores ``(x − low) / (high − low)`` (0 = ``low``, 1 = ``high``).

    Args:
      x: raw returns of one task, any shape.
      low: the task's reference low score (e.g. a random policy's return).
      high: the task's reference high score (e.g. the maximum return).

    Returns:
      float64 array of ``x``'s shape.

    Raises:
      ValueError: ``high == low``.

    Example:
      >>> normalized_scores([10.0, 255.0, 500.0], 10.0, 500.0).tolist()
      [0.0, 0.5, 1.0]
    """
    if not math.isfinite(high - low) or high == low:
        raise ValueError(f"normalized_scores: high={high!r} and low={low!r} must differ")
    return (np.asarray(x, np.float64) - low) / (high - low)


def _tasks(scores: Sequence[ArrayLike]) -> list[np.ndarray]:
    tasks = [_finite(s) for s in scores]
    if not tasks or any(t.size == 0 for t in tasks):
        raise ValueError("scores: give at least one task, each with at least one finite score")
    return tasks


def aggregate_iqm(scores: Sequence[ArrayLike]) -> float:
    """IQM of all runs of all tasks pooled (rliable's aggregate IQM).

    Args:
      scores: ``M`` tasks, each ``[N_m]`` normalised scores.

    Returns:
      The interquartile mean of the pooled ``Σ N_m`` scores.

    Example:
      >>> aggregate_iqm([[0.0, 1.0], [2.0, 3.0]])  # pooled 0,1,2,3: drop one at each end
      1.5
    """
    return interquartile_mean(np.concatenate(_tasks(scores)))


def performance_profile(scores: Sequence[ArrayLike], taus: ArrayLike) -> np.ndarray:
    """Score distribution: for each τ, the mean over tasks of the fraction of runs with score > τ.

    ``F(τ) = (1/M) Σ_m (1/N_m) Σ_n 1[x_{m,n} > τ]`` (rliable's run-score
    distribution; each task weighs the same whatever its run count).

    Args:
      scores: ``M`` tasks, each ``[N_m]`` normalised scores.
      taus: ``[K]`` thresholds.

    Returns:
      ``[K]`` fractions in [0, 1], non-increasing in τ.

    Example:
      >>> performance_profile([[0.1, 0.9], [0.5, 0.6, 0.7, 0.8]], [0.55]).tolist()  # (1/2 + 3/4)/2
      [0.625]
    """
    taus = np.asarray(taus, np.float64).reshape(-1)
    return np.mean([(t[None, :] > taus[:, None]).mean(axis=1) for t in _tasks(scores)], axis=0)


def probability_of_improvement(x: Sequence[ArrayLike], y: Sequence[ArrayLike]) -> float:
    """P(X > Y): the chance that a run of X beats a run of Y on a task, averaged over tasks.

    ``P = (1/M) Σ_m (1/(N_m K_m)) Σ_i Σ_j S(x_{m,i}, y_{m,j})`` with ``S = 1`` if
    ``x > y``, ``1/2`` if equal, 0 otherwise (the Mann–Whitney U statistic over
    ``N_m K_m``, as rliable computes it).

    Args:
      x: ``M`` tasks of algorithm X's scores, each ``[N_m]``.
      y: the same ``M`` tasks of algorithm Y's scores, each ``[K_m]``.

    Returns:
      The probability in [0, 1].

    Example:
      >>> probability_of_improvement([[1.0, 3.0]], [[2.0, 3.0]])  # (0 + 0 + 1 + 1/2) / 4
      0.375
    """
    xs, ys = _tasks(x), _tasks(y)
    if len(xs) != len(ys):
        raise ValueError(f"probability_of_improvement: {len(xs)} tasks in x, {len(ys)} in y")
    per_task = [
        float(np.mean((a[:, None] > b[None, :]) + 0.5 * (a[:, None] == b[None, :])))
        for a, b in zip(xs, ys, strict=True)
    ]
    return float(np.mean(per_task))


def stratified_bootstrap_ci(
    scores: Sequence[ArrayLike],
    statistic: Callable[..., Any],
    *,
    confidence: float = CONFIDENCE,
    num_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of a cross-task ``statistic``, resampling runs within each task.

    Args:
      scores: ``M`` tasks, each ``[N_m]`` scores.
      statistic: ``list of M arrays -> float`` (e.g. :func:`aggregate_iqm`).
      confidence: coverage of the interval, in (0, 1).
      num_resamples: bootstrap resamples.
      seed: seed of the resampling generator.

    Returns:
      ``(low, high)``.

    Example:
      >>> stratified_bootstrap_ci([[1.0, 1.0], [2.0, 2.0]], aggregate_iqm)
      (1.5, 1.5)
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} must lie in (0, 1)")
    tasks = _tasks(scores)
    rng = np.random.default_rng(seed)
    values = np.empty(num_resamples)
    for b in range(num_resamples):
        values[b] = statistic([t[rng.integers(0, t.size, t.size)] for t in tasks])
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return (float(low), float(high))
