"""Results on disk: the long curves table, ``jaxpg.sweep.load``, figures, cross-task stats.

The cross-task statistics are checked against their formulas on cases small
enough to work out by hand (the arithmetic is in the comments). rliable itself
is not installed here (it does not import beside pandas 3), so there is no
cross-check against it.
"""

import math

import numpy as np
import pytest

from jaxpg import results, stats

sweep_mod = __import__("jaxpg.sweep", fromlist=["load"])


def test_curve_rows_roundtrip(tmp_path):
    ret = np.array([[np.nan, 1.5, 2.0], [3.0, np.nan, 4.25]])
    steps = np.array([[8.0, 16.0, 24.0], [8.0, 16.0, 24.0]])
    c = results.curve_rows([0, 1], [4, 9], steps, ret)
    assert c.point.tolist() == [0, 0, 0, 1, 1, 1]
    assert c.seed.tolist() == [4, 4, 4, 9, 9, 9]
    assert c.update.tolist() == [1, 2, 3, 1, 2, 3]
    path = tmp_path / "curves.csv"
    results.write_curves_csv(path, c)
    assert path.read_text().splitlines()[0] == "point,seed,update,env_steps,episode_return"
    back = results.read_curves_csv(path)
    for a, b in zip(c, back, strict=True):
        np.testing.assert_array_equal(a, b)
    s, r = back.of(1)
    np.testing.assert_array_equal(r, ret[1:])
    np.testing.assert_array_equal(s, steps[1:])


def test_curve_rows_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes disagree"):
        results.curve_rows([0], [0, 1], np.zeros((2, 3)), np.zeros((2, 3)))


def test_iqm_band_matches_stats():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 3))
    x[0, 0] = np.nan
    mid, low, high = results.iqm_band(x, num_resamples=200, seed=1)
    for u in range(3):
        assert mid[u] == stats.interquartile_mean(x[:, u])
        assert (low[u], high[u]) == stats.iqm_bootstrap_ci(x[:, u], num_resamples=200, seed=1)
    assert np.all(low <= mid) and np.all(mid <= high)


def test_figures_are_vector_and_300_dpi(tmp_path):
    rng = np.random.default_rng(0)
    ret = rng.normal(size=(6, 40)).cumsum(axis=1)
    steps = np.tile(np.arange(1, 41) * 64.0, (6, 1))
    c = results.curve_rows([0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2], steps, ret)
    written = results.plot_curves(c, ["a", "b"], tmp_path / "fig", per_seed=True, num_resamples=50)
    assert sorted(p.name for p in written) == ["fig.pdf", "fig.png", "fig.svg"]
    assert (tmp_path / "fig.pdf").read_bytes()[:5] == b"%PDF-"
    assert b"<svg" in (tmp_path / "fig.svg").read_bytes()[:2000]
    from PIL import Image

    with Image.open(tmp_path / "fig.png") as im:
        dpi = im.info["dpi"]
        assert round(dpi[0]) == 300 and im.size == (1800, 1140)  # 6 x 3.8 in at 300 dpi


def test_normalized_scores():
    # (x - low) / (high - low) with low 10, high 500: 255 is halfway.
    np.testing.assert_allclose(stats.normalized_scores([10, 255, 500], 10, 500), [0, 0.5, 1])
    with pytest.raises(ValueError, match="must differ"):
        stats.normalized_scores([1.0], 2.0, 2.0)


def test_aggregate_iqm_pools_tasks():
    # Pooled: 0, 1, 2, 3, 4, 5, 6, 7 (n = 8): drop 2 at each end -> mean(2, 3, 4, 5) = 3.5
    assert stats.aggregate_iqm([[0, 7, 3], [1, 2, 6, 5, 4]]) == 3.5


def test_performance_profile_weights_tasks_equally():
    task_a = [0.1, 0.9]  # fraction > 0.5: 1/2; > 0.0: 2/2; > 1.0: 0
    task_b = [0.5, 0.6, 0.7, 0.8]  # fraction > 0.5: 3/4 (0.5 is not > 0.5); > 0.0: 1; > 1.0: 0
    prof = stats.performance_profile([task_a, task_b], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(prof, [1.0, (0.5 + 0.75) / 2, 0.0])


def test_probability_of_improvement_counts_ties_half():
    # Task 1: x = {1, 3}, y = {2, 3}: pairs (1,2)=0 (1,3)=0 (3,2)=1 (3,3)=1/2 -> 1.5/4 = 0.375
    # Task 2: x = {5}, y = {1, 2}: both pairs 1 -> 1.0.  Mean over tasks: 0.6875
    p = stats.probability_of_improvement([[1, 3], [5]], [[2, 3], [1, 2]])
    assert p == pytest.approx((0.375 + 1.0) / 2)
    # Symmetry: P(X > Y) + P(Y > X) = 1
    q = stats.probability_of_improvement([[2, 3], [1, 2]], [[1, 3], [5]])
    assert p + q == pytest.approx(1.0)
    with pytest.raises(ValueError, match="tasks"):
        stats.probability_of_improvement([[1.0]], [[1.0], [2.0]])


def test_stratified_bootstrap_resamples_within_tasks():
    # Each task constant: every resample has the same pooled IQM.
    assert stats.stratified_bootstrap_ci([[1, 1], [2, 2]], stats.aggregate_iqm) == (1.5, 1.5)
    low, high = stats.stratified_bootstrap_ci(
        [np.arange(8.0), np.arange(8.0) + 10], stats.aggregate_iqm, num_resamples=300
    )
    point = stats.aggregate_iqm([np.arange(8.0), np.arange(8.0) + 10])
    assert low < point < high


def test_cli_sweep_writes_curves_and_load_reads_them(tmp_path):
    from jaxpg.cli import main

    out = tmp_path / "sw"
    args = ["sweep", "--seeds", "2", "--grid", "lr=1e-3,3e-4", "--num-envs", "2"]
    args += ["--num-steps", "16", "--total-timesteps", "96", "--num-minibatches", "2"]
    assert main([*args, "--out", str(out), "--quiet"]) == 0
    for name in ("curves.csv", "curves.pdf", "curves.svg", "curves.png"):
        assert (out / name).is_file(), name
    got = sweep_mod.load(out)
    assert isinstance(got, results.LoadedSweep)
    assert got.kind == "grid" and got.seeds == [0, 1] and got.search is None
    assert [p.values["lr"] for p in got.points] == [1e-3, 3e-4]
    assert sorted(p.rank for p in got.points) == [1, 2]
    # 4 runs x 3 updates (96 steps / 32 per update)
    assert len(got.curves.point) == 12 and got.curves.update.max() == 3
    steps, ret = got.curves.of(1)
    assert steps.shape == (2, 3) and steps[0, -1] == 96
    # summary's final return = stats.final_return of the curve (mean over the last update)
    finals = [stats.final_return(r) for r in ret]
    finite = [f for f in finals if math.isfinite(f)]
    if finite:
        assert got.points[1].mean == pytest.approx(np.mean(finite))
