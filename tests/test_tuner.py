"""Batched Optuna (``jaxpg sweep --search optuna``): ask a batch, train it vmapped, tell it.

Skipped where the optional extra is not installed (``pip install "jaxpg[optuna]"``).
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

optuna = pytest.importorskip("optuna")

ROOT = pathlib.Path(__file__).resolve().parents[1]
ARGS = ["sweep", "--search", "optuna", "--space", "lr=loguniform:1e-4:1e-2"]
ARGS += ["--space", "lam=choice:0.9,0.95", "--population", "4", "--num-envs", "2"]
ARGS += ["--num-steps", "16", "--total-timesteps", "256", "--num-minibatches", "2"]


def _run(out, *extra):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    return subprocess.run(
        [sys.executable, "-m", "jaxpg", *ARGS, "--out", str(out), *extra],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_optuna_batches_and_resumes_the_study_across_processes(tmp_path):
    out = tmp_path / "tpe"
    first = _run(out, "--rounds", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    one = json.loads((out / "search.json").read_text())
    assert [t["number"] for t in one["trials"]] == [0, 1, 2, 3]
    assert (out / "optuna.db").is_file()

    second = _run(out, "--rounds", "2")  # the study resumes: only round 2 is trained
    assert second.returncode == 0, second.stderr[-3000:]
    assert "optuna round 2/2" in second.stderr and "round 1/2" not in second.stderr
    two = json.loads((out / "search.json").read_text())
    assert [t["number"] for t in two["trials"]] == list(range(8))
    assert two["trials"][:4] == one["trials"]
    for t in two["trials"]:
        assert 1e-4 <= t["values"]["lr"] <= 1e-2 and t["values"]["lam"] in (0.9, 0.95)
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{out / 'optuna.db'}")
    assert len(study.trials) == 8 and study.best_trial.number == two["best_trial"]
    best = json.loads((out / "best_config.json").read_text())
    assert best["lr"] == pytest.approx(study.best_params["lr"])
    lines = (out / "curves.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + 8 * 8  # 8 trials x 8 updates
