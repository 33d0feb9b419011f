"""The command line end to end: subprocesses with tiny budgets.

Subprocesses share a persistent JAX compilation cache (one per test session),
so only the first compile of each program is paid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jaxpg import checkpoint
from jaxpg.cli import main
from jaxpg.progress import COLUMNS, read_metrics

try:
    import tensorboardX  # noqa: F401

    HAS_TB = True
except ImportError:
    HAS_TB = False
ROOT = Path(__file__).resolve().parents[1]
TINY = ["--total-timesteps", "2048", "--num-envs", "4", "--num-steps", "32", "--quiet"]
# Long enough to be killed mid-run: 160 updates in chunks of 4, checkpoints every 8.
KILLABLE = [
    "--total-timesteps",
    str(160 * 4 * 16),
    "--num-envs",
    "4",
    "--num-steps",
    "16",
    "--num-minibatches",
    "2",
    "--num-epochs",
    "2",
    "--hidden-sizes",
    "16",
    "--checkpoint-every",
    "8",
    "--log-every",
    "4",
    "--quiet",
]


@pytest.fixture(scope="session")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("jax_cache")
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "JAX_PLATFORMS": "cpu",
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }


def jaxpg(env, *args, cwd=None, check=True):
    proc = subprocess.run(
        [sys.executable, "-m", "jaxpg", *map(str, args)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr}")
    return proc


def final_params(run_dir: Path):
    tree, _, _ = checkpoint.read(checkpoint.list_checkpoints(run_dir / "checkpoints")[-1][1])
    return tree


def assert_trees_equal(a, b):
    import jax

    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def assert_whole_rows(run_dir: Path, n: int):
    text = (run_dir / "metrics.csv").read_text()
    assert text.endswith("\n")
    lines = text.splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert all(len(ln.split(",")) == len(COLUMNS) for ln in lines[1:])
    assert [int(ln.split(",")[0]) for ln in lines[1:]] == list(range(1, n + 1))


@pytest.fixture(scope="session")
def tiny_run(env, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    proc = jaxpg(
        env,
        "train",
        *TINY,
        "--out",
        out,
        "--json",
        "--checkpoint-every",
        "8",
        *(["--tensorboard"] if HAS_TB else []),
    )
    return out, json.loads(proc.stdout)


def test_train_writes_a_complete_run_dir(tiny_run):
    out, summary = tiny_run
    assert summary["status"] == "completed" and summary["num_updates"] == 16
    for name in ("config.json", "metrics.csv", "learning_curve.png", "summary.json"):
        assert (out / name).is_file(), name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["num_steps"] == 32
    assert cfg["versions"]["jax"] and cfg["versions"]["devices"]
    assert_whole_rows(out, 16)
    m = read_metrics(out / "metrics.csv")
    assert np.all(np.diff(m["env_steps"]) == 128)
    assert [s for s, _ in checkpoint.list_checkpoints(out / "checkpoints")] == [8, 16]
    if HAS_TB:
        assert list((out / "tensorboard").glob("events.out.tfevents.*"))


def test_callback_log_mode_streams_the_same_run(env, tiny_run, tmp_path):
    out, _ = tiny_run
    cb = tmp_path / "cb"
    jaxpg(
        env,
        "train",
        *TINY,
        "--out",
        cb,
        "--checkpoint-every",
        "8",
        "--log-every",
        "4",
        "--log-mode",
        "callback",
    )
    assert_whole_rows(cb, 16)
    a, b = read_metrics(out / "metrics.csv"), read_metrics(cb / "metrics.csv")
    np.testing.assert_allclose(a["episode_return"], b["episode_return"], rtol=1e-5)
    import jax

    for x, y in zip(
        jax.tree.leaves(final_params(out)), jax.tree.leaves(final_params(cb)), strict=True
    ):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-6)


def test_eval_json_and_gif_error(env, tiny_run, tmp_path, capsys):
    out, _ = tiny_run
    code = main(["eval", str(out), "--episodes", "2", "--gif", str(tmp_path / "ep.gif")])
    err = capsys.readouterr().err
    try:
        import pygame  # noqa: F401

        assert code == 0 and (tmp_path / "ep.gif").stat().st_size > 0
    except ImportError:  # CartPole renders through gymnasium, which needs pygame
        assert code == 2 and 'needs pygame (pip install "jaxpg[render]")' in err
        assert not (tmp_path / "ep.gif").exists()
    assert main(["eval", str(out), "--gif", str(tmp_path / "ep.png")]) == 2
    assert "must end in .gif" in capsys.readouterr().err
    res = json.loads(jaxpg(env, "eval", out, "--episodes", "8", "--greedy", "--json").stdout)
    assert res["episodes"] == 8 and res["update"] == 16 and res["greedy"]
    assert res["return_mean"] >= 8  # CartPole pays 1 per step; no episode is shorter
    from jaxpg.run import load_policy

    ckpt = checkpoint.list_checkpoints(out / "checkpoints")[0][1]
    config, params, step, obs_norm = load_policy(ckpt)
    assert (
        step == 8 and config.num_steps == 32 and "params" in params["policy"] and obs_norm is None
    )


def test_resume_after_sigkill_and_sigint_matches_uninterrupted(env, tmp_path):
    ref = tmp_path / "ref"
    jaxpg(env, "train", *KILLABLE, "--out", ref)
    for sig in (signal.SIGKILL, signal.SIGINT):
        out = tmp_path / sig.name
        proc = subprocess.Popen(
            [sys.executable, "-m", "jaxpg", "train", *KILLABLE, "--out", str(out)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 120
        while not checkpoint.list_checkpoints(out / "checkpoints") and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        done = checkpoint.list_checkpoints(out / "checkpoints")[-1][0]
        assert done < 160, "the run ended before it could be interrupted"
        if sig == signal.SIGINT:
            assert proc.returncode == 130 and "--resume" in err
        for _, path in checkpoint.list_checkpoints(out / "checkpoints"):
            checkpoint.read(path)  # every checkpoint on disk is whole
        rows = read_metrics(out / "metrics.csv")["update"]
        assert len(rows) >= done and list(rows) == list(range(1, len(rows) + 1))
        jaxpg(env, "train", "--resume", out, "--quiet")
        assert_whole_rows(out, 160)
        assert_trees_equal(final_params(ref), final_params(out))


def test_resume_rejects_changed_options_and_incompatible_checkpoints(env, tiny_run, tmp_path):
    out, _ = tiny_run
    proc = jaxpg(env, "train", "--resume", out, "--lr", "0.1", check=False)
    assert proc.returncode == 2 and "--lr (saved 0.001, given 0.1)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    # A run dir whose config no longer matches its checkpoints.
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "checkpoints").mkdir()
    cfg = json.loads((out / "config.json").read_text())
    cfg["config"]["hidden_sizes"] = [8]
    (broken / "config.json").write_text(json.dumps(cfg))
    src = checkpoint.list_checkpoints(out / "checkpoints")[0][1]
    (broken / "checkpoints" / src.name).write_bytes(src.read_bytes())
    proc = jaxpg(env, "train", "--resume", broken, "--quiet", check=False)
    assert proc.returncode == 2  # the identity record's hash names the edited field
    assert "was edited after the run was made: hidden_sizes (made with [64, 64]" in proc.stderr
    # A config.json without the identity hash (older runs): the checkpoint check still holds.
    del cfg["config_sha256"]
    (broken / "config.json").write_text(json.dumps(cfg))
    proc = jaxpg(env, "train", "--resume", broken, "--quiet", check=False)
    assert proc.returncode == 2
    assert "incompatible config: hidden_sizes=(64, 64) (run has (8,))" in proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--no-such-option"], "unrecognized arguments: --no-such-option"),
        (["train", "--num-envs", "four"], "argument --num-envs: invalid int value: 'four'"),
        (["train", "--estimator", "a2c"], "argument --estimator: invalid choice: 'a2c'"),
        (["train", "--env", "Nope-v0"], "env='Nope-v0' is invalid: allowed: "),
        (["train", "--preset", "nope"], "preset='nope' is unknown; allowed: "),
        (
            ["train", "--num-minibatches", "3"],
            "must divide num_envs*num_steps = 2048; allowed: 1, 2, 4",
        ),
        (["eval", "/no/such/run"], "/no/such/run does not exist"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(args)
    except SystemExit as exc:  # argparse errors
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert message in err[-1]
    assert not (tmp_path / "runs").exists()  # nothing half-written


def test_bad_config_files_and_unwritable_out(env, tmp_path, capsys):
    (tmp_path / "bad.toml").write_text("lr = [oops\n")
    (tmp_path / "typo.toml").write_text("learning_rate = 0.1\n")
    (tmp_path / "type.yaml").write_text("num_envs: many\n")
    (tmp_path / "x.json").write_text("{")
    (tmp_path / "x.ini").write_text("")
    cases = {
        "bad.toml": "not valid TOML",
        "typo.toml": "unknown field(s) learning_rate; allowed: env, env_module, estimator",
        "type.yaml": "Config.num_envs='many' is invalid: must be an integer",
        "x.json": "not valid JSON",
        "x.ini": "unknown file type '.ini'; allowed: .toml, .yaml, .yml, .json",
    }
    for name, message in cases.items():
        assert (
            main(["train", "--config", str(tmp_path / name), "--out", str(tmp_path / "never")]) == 2
        )
        assert message in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
    proc = jaxpg(env, "train", *TINY, "--out", "/proc/jaxpg/run", check=False)
    assert proc.returncode == 2 and "--out /proc/jaxpg/run is not writable" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert main(["train", *TINY, "--out", str(tmp_path / "x.json")]) == 2
    assert "x.json exists and is not a directory" in capsys.readouterr().err


def test_layering_defaults_preset_file_options(tmp_path):
    import argparse

    from jaxpg.cli import build_parser
    from jaxpg.commands.common import resolve_config

    (tmp_path / "c.yaml").write_text("lr: 0.01\nnum_envs: 8\nhidden_sizes: [32, 32]\n")
    (tmp_path / "c.toml").write_text("[config]\nlr = 0.02\nanneal_lr = false\n")
    parser = build_parser()
    args: argparse.Namespace = parser.parse_args(
        [
            "train",
            "--preset",
            "acrobot-ppo",
            "--config",
            str(tmp_path / "c.yaml"),
            "--num-envs",
            "16",
        ]
    )
    config, sources = resolve_config(args)
    assert config.env == "Acrobot-v1" and sources["env"] == "preset"
    assert config.lr == 0.01 and sources["lr"] == "file"
    assert config.hidden_sizes == (32, 32)
    assert config.num_envs == 16 and sources["num_envs"] == "option"
    config, _ = resolve_config(parser.parse_args(["train", "--config", str(tmp_path / "c.toml")]))
    assert config.lr == 0.02 and config.anneal_lr is False and config.env == "CartPole-v1"


def test_help_and_presets(env, capsys):
    proc = jaxpg(env, "train", "--help")
    assert "--total-timesteps INT" in proc.stdout and "(default: 1000000)" in proc.stdout
    for cmd in ("eval", "presets"):
        with pytest.raises(SystemExit) as exc:
            main([cmd, "--help"])
        assert exc.value.code == 0
    capsys.readouterr()
    assert main(["presets", "--json"]) == 0
    presets = json.loads(capsys.readouterr().out)
    assert {"cartpole-ppo", "acrobot-ppo", "acrobot-vpg", "pendulum-ppo"} <= set(presets)
    assert all(p["result"] for p in presets.values())


@pytest.mark.slow
def test_sigkill_at_random_moments_never_corrupts_and_resume_is_exact(env, tmp_path):
    """Kill at random times (also before the first checkpoint and mid-write), resume each."""
    ref = tmp_path / "ref"
    jaxpg(env, "train", *KILLABLE, "--out", ref)
    rng = np.random.default_rng(0)
    out = tmp_path / "killed"
    first = True
    for delay in rng.uniform(0.0, 6.0, size=6):
        args = (
            ["train", *KILLABLE, "--out", str(out)]
            if first
            else ["train", "--resume", str(out), "--quiet"]
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "jaxpg", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(delay)
        proc.kill()
        proc.wait(timeout=60)
        first = first and not (out / "config.json").exists()
        for _, path in checkpoint.list_checkpoints(out / "checkpoints"):
            checkpoint.read(path)
        if (out / "metrics.csv").exists():
            text = (out / "metrics.csv").read_text()
            assert not text or text.endswith("\n")
    if first:  # never got as far as writing config.json
        jaxpg(env, "train", *KILLABLE, "--out", out)
    else:
        jaxpg(env, "train", "--resume", out, "--quiet")
    assert_whole_rows(out, 160)
    assert_trees_equal(final_params(ref), final_params(out))
