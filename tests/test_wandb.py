"""Weights & Biases and TensorBoard logging: finite values only, offline W&B runs on disk."""

from __future__ import annotations

import json
import logging
import math
import sys

import numpy as np
import pytest

from jaxpg.cli import main
from jaxpg.progress import STREAMED, MetricsSink

TINY = ["--total-timesteps", "1024", "--num-envs", "4", "--num-steps", "32", "--quiet"]


class FakeWriter:
    """Records what a TensorBoard writer or a W&B run is given."""

    def __init__(self):
        self.scalars: list[tuple[str, float, int]] = []
        self.rows: list[tuple[dict, int]] = []

    def add_scalar(self, name, value, step):
        self.scalars.append((name, value, step))

    def log(self, row, step):
        self.rows.append((dict(row), step))

    def flush(self):
        pass

    def close(self):
        pass


def _rows(n: int, nan_until: int) -> np.ndarray:
    rows = np.ones((n, 2 + len(STREAMED)))
    rows[:, 0] = np.arange(1, n + 1)
    rows[:, 1] = 128 * rows[:, 0]
    rows[:nan_until, 2] = np.nan  # episode_return before any episode ended
    rows[0, 3] = np.inf
    return rows


def test_sinks_get_only_finite_values(tmp_path):
    tb, wb = FakeWriter(), FakeWriter()
    sink = MetricsSink(tmp_path / "metrics.csv", 1280, progress=False, wandb_run=wb)
    sink.tb = tb
    sink.write_rows(_rows(10, nan_until=3))
    sink.close()
    assert tb.scalars and all(math.isfinite(v) for _, v, _ in tb.scalars)
    returns = [(v, step) for name, v, step in tb.scalars if name == "train/episode_return"]
    assert [step for _, step in returns] == [128 * u for u in range(4, 11)]  # env steps
    assert [step for _, step in wb.rows] == list(range(1, 11))  # W&B: one row per update
    assert all(math.isfinite(v) for row, _ in wb.rows for v in row.values())
    assert "train/episode_return" not in wb.rows[2][0]
    assert wb.rows[3][0]["train/episode_return"] == 1.0 and wb.rows[3][0]["env_steps"] == 512


def test_tensorboard_never_warns_about_nan(tmp_path, caplog):
    pytest.importorskip("tensorboardX")
    sink = MetricsSink(
        tmp_path / "metrics.csv", 1280, progress=False, tensorboard_dir=tmp_path / "tb"
    )
    with caplog.at_level(logging.WARNING):
        sink.write_rows(_rows(10, nan_until=3))
        sink.close()
    assert "NaN or Inf" not in caplog.text
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_missing_wandb_is_a_one_line_error_naming_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises ImportError
    for cmd in ("train", "sweep"):
        code = main([cmd, *TINY, "--wandb", "--out", str(tmp_path / cmd)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1
        assert "--wandb needs the wandb package: pip install 'jaxpg[wandb]'" in err[0]
        assert not (tmp_path / cmd).exists()


@pytest.fixture
def offline(monkeypatch, tmp_path):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    from tests import wandb_records

    return wandb_records


def test_train_wandb_offline_run_holds_the_metrics_rows(offline, tmp_path, capsys):
    from jaxpg.progress import read_metrics

    out = tmp_path / "run"
    argv = ["train", *TINY, "--lr", "3e-3", "--out", str(out), "--json", "--wandb"]
    argv += ["--wandb-project", "proj", "--wandb-group", "grp", "--wandb-tags", "a,b"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)  # stdout is still one JSON document
    (wandb_file,) = out.glob("wandb/offline-run-*/run-*.wandb")
    run, config = offline.run_record(wandb_file)
    assert (run.project, run.run_group, list(run.tags)) == ("proj", "grp", ["a", "b"])
    assert config["lr"] == 3e-3 and config["num_updates"] == 8
    saved = json.loads((out / "config.json").read_text())["run"]["wandb"]
    assert run.run_id == saved["run_id"]

    rows = offline.history_rows(wandb_file)
    m = read_metrics(out / "metrics.csv")
    assert [r["_step"] for r in rows] == [int(u) for u in m["update"]]
    assert [r["env_steps"] for r in rows] == list(m["env_steps"])
    for row, ret, loss in zip(rows, m["episode_return"], m["loss"], strict=True):
        assert row["train/loss"] == pytest.approx(loss, rel=1e-5)
        if math.isfinite(ret):
            assert row["train/episode_return"] == pytest.approx(ret, rel=1e-5)
        else:
            assert "train/episode_return" not in row
    assert offline.summary(wandb_file)["final_return"] == pytest.approx(summary["final_return"])


def test_sweep_wandb_logs_one_run_per_grid_point(offline, tmp_path, capsys):
    out = tmp_path / "sw"
    argv = ["sweep", *TINY, "--seeds", "2", "--grid", "lr=1e-3,3e-3", "--out", str(out)]
    assert main([*argv, "--no-plot", "--json", "--wandb"]) == 0
    result = json.loads(capsys.readouterr().out)
    files = sorted(out.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 2
    lrs = set()
    for f in files:
        run, config = offline.run_record(f)
        assert run.run_group == "sw" and config["seeds"] == [0, 1]
        lrs.add(config["lr"])
        rows = offline.history_rows(f)
        assert [r["_step"] for r in rows] == list(range(1, 9))
        point = next(p for p in result["summary"] if p["lr"] == config["lr"])
        final = offline.summary(f)
        assert final["final_return/mean"] == pytest.approx(point["mean"])
        assert final["final_return/iqm_ci_low"] <= final["final_return/iqm"]
    assert lrs == {1e-3, 3e-3}
