"""Statistics over seeds against hand-worked cases and plain NumPy/SciPy."""

import math

import numpy as np
import pytest

from jaxpg import stats


def test_standard_error_hand_case():
    # x = 1, 2, 3, 4: mean 2.5, squared deviations 2.25+0.25+0.25+2.25 = 5,
    # sample variance 5/3, sem = sqrt(5/3)/sqrt(4) = 0.6455.
    assert stats.standard_error([1, 2, 3, 4]) == pytest.approx(math.sqrt(5 / 3) / 2)


def test_standard_error_matches_numpy_and_drops_nan():
    x = np.random.default_rng(0).normal(size=17)
    want = np.std(x, ddof=1) / np.sqrt(17)
    assert stats.standard_error(x) == pytest.approx(want)
    assert stats.standard_error(np.append(x, np.nan)) == pytest.approx(want)
    assert math.isnan(stats.standard_error([3.0]))
    assert math.isnan(stats.standard_error([np.nan, np.nan]))


def test_iqm_hand_cases():
    # n = 8: drop floor(8/4) = 2 at each end of sorted (-50, 1, 2, 3, 4, 5, 6, 100)
    # → mean(2, 3, 4, 5) = 3.5.
    assert stats.interquartile_mean([1, 2, 3, 4, 100, -50, 5, 6]) == 3.5
    # n = 5: drop floor(1.25) = 1 each end of (1, 2, 3, 4, 50) → mean(2, 3, 4) = 3.
    assert stats.interquartile_mean([50, 1, 2, 3, 4]) == 3.0
    # n = 3: nothing dropped.
    assert stats.interquartile_mean([1, 2, 6]) == 3.0
    assert math.isnan(stats.interquartile_mean([]))


@pytest.mark.parametrize("n", [4, 5, 7, 16, 33])
def test_iqm_matches_scipy_trim_mean(n):
    scipy_stats = pytest.importorskip("scipy.stats")
    x = np.random.default_rng(n).standard_t(2, size=n)
    assert stats.interquartile_mean(x) == pytest.approx(scipy_stats.trim_mean(x, 0.25))


def test_bootstrap_ci_is_the_percentile_interval_of_resampled_means():
    x = np.random.default_rng(1).normal(10.0, 2.0, size=12)
    low, high = stats.bootstrap_ci(x, num_resamples=5000, seed=7)
    # The same computation written out with NumPy.
    idx = np.random.default_rng(7).integers(0, 12, (5000, 12))
    means = x[idx].mean(axis=1)
    assert (low, high) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))
    assert low < x.mean() < high


def test_bootstrap_ci_seeded_and_degenerate_cases():
    x = [1.0, 5.0, 2.0, 8.0, 3.0]
    assert stats.bootstrap_ci(x, seed=3) == stats.bootstrap_ci(x, seed=3)
    assert stats.bootstrap_ci([4.0, 4.0]) == (4.0, 4.0)
    assert stats.bootstrap_ci([4.0]) == (4.0, 4.0)
    assert all(math.isnan(v) for v in stats.bootstrap_ci([np.nan]))
    with pytest.raises(ValueError, match="confidence"):
        stats.bootstrap_ci(x, confidence=1.5)


def test_bootstrap_ci_width_close_to_normal_interval():
    # For n = 400 normal values the percentile interval ≈ mean ± 1.96 sem; allow 10%.
    x = np.random.default_rng(2).normal(size=400)
    low, high = stats.bootstrap_ci(x, num_resamples=4000, seed=0)
    sem = stats.standard_error(x)
    assert (high - low) == pytest.approx(2 * 1.96 * sem, rel=0.10)


def test_bootstrap_means_of_curves_ignore_nan():
    curves = np.array([[np.nan, 1.0], [np.nan, 3.0]])
    boot = stats.bootstrap_means(curves, num_resamples=50, seed=0)
    assert boot.shape == (50, 2)
    assert np.all(np.isnan(boot[:, 0]))
    assert np.all((boot[:, 1] >= 1.0) & (boot[:, 1] <= 3.0))


def test_summarize_fields():
    s = stats.summarize([1.0, 2.0, 3.0, 4.0, np.nan])
    assert s["n"] == 4 and s["mean"] == 2.5 and s["median"] == 2.5
    assert (s["min"], s["max"]) == (1.0, 4.0)
    assert s["sem"] == pytest.approx(math.sqrt(5 / 3) / 2)
    assert s["ci_low"] <= 2.5 <= s["ci_high"]


def test_rank_best_first_nan_last_ties_by_tiebreak():
    assert stats.rank([1.0, 3.0, float("nan"), 2.0]) == [3, 1, 4, 2]
    assert stats.rank([2.0, 2.0, 1.0], tiebreak=[0.0, 5.0, 9.0]) == [2, 1, 3]
    assert stats.rank([2.0, 2.0]) == [1, 2]


def test_iqm_bootstrap_ci_covers_the_iqm_and_is_seeded():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(10.0, 1.0, 30), [1e6, -1e6]])  # two outliers
    low, high = stats.iqm_bootstrap_ci(x)
    assert low <= stats.interquartile_mean(x) <= high
    assert high - low < 3.0  # the outliers do not blow the interval up (the mean's does)
    m_low, m_high = stats.bootstrap_ci(x)
    assert m_high - m_low > 1e4
    assert stats.iqm_bootstrap_ci(x, seed=1) != (low, high)
    assert stats.iqm_bootstrap_ci(x) == (low, high)
    assert stats.iqm_bootstrap_ci([np.nan, 2.0]) == (2.0, 2.0)
    assert all(np.isnan(stats.iqm_bootstrap_ci([np.nan])))
    s = stats.summarize(x)
    assert (s["iqm_ci_low"], s["iqm_ci_high"]) == (low, high)


def test_iqm_bootstrap_ci_matches_a_loop_over_resamples():
    x = np.arange(9.0) ** 2
    idx = np.random.default_rng(3).integers(0, 9, (200, 9))
    iqms = [stats.interquartile_mean(x[i]) for i in idx]
    expect = tuple(np.quantile(iqms, [0.05, 0.95]))
    got = stats.iqm_bootstrap_ci(x, confidence=0.9, num_resamples=200, seed=3)
    np.testing.assert_allclose(got, expect)


def test_final_return_is_the_last_five_percent_of_updates():
    assert stats.final_window(100) == 5 and stats.final_window(19) == 1
    curve = np.concatenate([np.zeros(95), [1.0, np.nan, 2.0, 3.0, np.nan]])
    assert stats.final_return(curve) == 2.0
    assert stats.final_return([np.nan] * 3) != stats.final_return([np.nan] * 3)  # NaN
    assert stats.final_return([7.0]) == 7.0
