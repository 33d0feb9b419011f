"""Every script in examples/ runs to the end (a few thousand env steps each)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
# What each script's last line says when it ran to the end.
LAST_LINE = {
    "custom_loop.py": "update 6  lr 0.003",
    "sweep_learning_rates.py": "6 runs in 1 compiled program(s)",
    "train_cartpole.py": "after 8 updates",
}


def test_every_example_is_listed():
    assert {p.name for p in EXAMPLES} == set(LAST_LINE)


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert LAST_LINE[script.name] in last, proc.stdout
    assert "nan" not in last.lower()
