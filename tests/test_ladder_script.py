"""scripts/ladder.py: its curve gridding against a slow loop, the cell configs, and
the figure and table drawn from synthetic results (no training here)."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parent.parent / "scripts" / "ladder.py"
_SPEC = importlib.util.spec_from_file_location("ladder_script", _PATH)
ladder = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(ladder)


def _slow_on_grid(steps, returns, grid):
    out = []
    for g in grid:
        last = math.nan
        for s, r in zip(steps, returns, strict=True):
            if s <= g and math.isfinite(r):
                last = r
        out.append(last)
    return np.array(out)


@pytest.mark.parametrize("seed", range(5))
def test_on_grid_matches_a_loop(seed):
    rng = np.random.default_rng(seed)
    steps = np.cumsum(rng.integers(1, 50, size=30)).astype(float)
    returns = rng.normal(size=30)
    returns[rng.random(30) < 0.3] = np.nan
    grid = np.linspace(0, steps[-1] + 10, 23)
    np.testing.assert_array_equal(
        ladder.on_grid(steps, returns, grid), _slow_on_grid(steps, returns, grid)
    )


def test_cell_configs_use_presets_and_borrow_only_estimator_settings():
    config, tuned = ladder.cell_config("CartPole-v1", "baseline", 123_456)
    assert tuned and config.estimator == "baseline" and config.total_timesteps == 123_456
    config, tuned = ladder.cell_config("CartPole-v1", "reward_to_go", 100_000)
    assert tuned and config.estimator == "reward_to_go"
    assert config.total_timesteps == 100_000 * ladder.EPISODIC_HEADROOM["CartPole-v1"]
    config, tuned = ladder.cell_config("Pendulum-v1", "npg", 200_000)
    pendulum = ladder.PRESETS["pendulum-ppo"].config
    donor = ladder.PRESETS["cartpole-npg"].config
    assert not tuned and config.estimator == "npg" and config.env == "Pendulum-v1"
    assert config.delta == donor.delta and config.num_epochs == donor.num_epochs
    assert config.gamma == pendulum.gamma and config.num_envs == pendulum.num_envs
    assert config.log_std_init == pendulum.log_std_init
    # a preset made from borrowed settings is used but not counted as tuned
    config, tuned = ladder.cell_config("Pendulum-v1", "trpo", 200_000)
    assert not tuned and config == ladder.PRESETS["pendulum-trpo"].config.replace(
        total_timesteps=200_000
    )


def test_summary_figure_and_table_from_synthetic_results(tmp_path):
    # 10 updates within the 10k budget, then 5 beyond it that the summary must ignore
    steps = [list(range(1000, 16_000, 1000))] * 4
    rising = [[float(i + j) for i in range(10)] + [1e6] * 5 for j in range(4)]
    results = {
        "seeds": 4,
        "budgets": {"CartPole-v1": 10_000},
        "cells": {
            "CartPole-v1": {
                "ppo": {"env_steps": steps, "episode_return": rising, "tuned": True, "wall_s": 1.0},
                "vpg": {
                    "env_steps": steps,
                    "episode_return": rising,
                    "tuned": False,
                    "wall_s": 2.0,
                },
            }
        },
    }
    s = ladder.summarize(results["cells"]["CartPole-v1"]["ppo"], 10_000, 475.0)
    # last 5% of 10 updates = the last one; seeds end at 9, 10, 11, 12: IQM = mean(10, 11)
    assert s["final_iqm"] == pytest.approx(10.5)
    assert math.isnan(s["steps_to_threshold"]) and s["iqm"].shape == (ladder.GRID_POINTS,)
    png = tmp_path / "ladder.png"
    ladder.plot(results, str(png))
    assert png.stat().st_size > 10_000
    text = ladder.table(results)
    assert "| CartPole-v1 | `ppo` | 10.5 [" in text and "| no |" in text
