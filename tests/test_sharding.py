"""One run's env batch sharded over devices: equal to the one-device run.

The parent process has one CPU device; the sharded runs happen in subprocesses
with ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (or two processes
of two devices joined by ``jax.distributed``) and are compared with
:data:`CFG` trained here on one device. Sharding changes only the order of
floating-point sums (per-device partial sums, then an all-reduce), so results
agree to float32 rounding: RTOL/ATOL 1e-5 on the learning curve, 1e-4/1e-5 on
the parameters (32 updates of Adam compound the rounding), as in
``tests/test_sweep.py``. Subprocesses share a persistent compilation cache.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxpg
from jaxpg import checkpoint, sharding
from jaxpg.progress import read_metrics

ROOT = Path(__file__).resolve().parents[1]
# 8 envs × 16 steps = 128 steps per update, 32 updates; PPO with 4 minibatches of 32.
CFG = jaxpg.Config(num_envs=8, num_steps=16, total_timesteps=4096, num_minibatches=4)
CLI_ARGS = [
    "--num-envs",
    "8",
    "--num-steps",
    "16",
    "--total-timesteps",
    "4096",
    "--num-minibatches",
    "4",
    "--checkpoint-every",
    "8",
    "--log-every",
    "4",
    "--quiet",
]
RTOL, ATOL = 1e-5, 1e-5
PARAM_RTOL, PARAM_ATOL = 1e-4, 1e-5


def _flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(x)) for x in jax.tree.leaves(tree)])


@pytest.fixture(scope="module")
def reference():
    """CFG trained on this process's single device: ``jax.jit(make_train(CFG))``."""
    out = jax.jit(jaxpg.make_train(CFG))(jax.random.key(CFG.seed))
    return {"params": _flat(out.state.params), **{k: np.asarray(v) for k, v in out.metrics.items()}}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("jax_cache")
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }


def _python(env, *args, timeout=240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *map(str, args)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _assert_matches(reference, episode_return, params):
    np.testing.assert_allclose(episode_return, reference["episode_return"], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(params, reference["params"], rtol=PARAM_RTOL, atol=PARAM_ATOL)


def _final_checkpoint(run_dir: Path) -> dict:
    tree, _, _ = checkpoint.read(checkpoint.list_checkpoints(run_dir / "checkpoints")[-1][1])
    return tree


# -- without devices ---------------------------------------------------------------
def test_env_split_error_names_num_envs_and_device_count():
    sharding.check_env_split(8, 4)
    with pytest.raises(ValueError, match=r"num_envs=6 .* device count 4 .*num_envs=8"):
        sharding.check_env_split(6, 4)


def test_state_shardings_split_only_the_env_batch():
    from jaxpg.runspec import init_state, make_runspec

    agent = make_runspec(CFG)
    state = jax.eval_shape(lambda k: init_state(agent, k), jax.random.key(0))
    specs = sharding.state_shardings(state, sharding.env_mesh(jax.devices()[:1]))
    env_specs = {s.spec for s in jax.tree.leaves(specs.env)}
    rest = {s.spec for s in jax.tree.leaves(specs.replace(env=None))}
    assert env_specs == {jax.sharding.PartitionSpec("envs")}
    assert rest == {jax.sharding.PartitionSpec()}
    assert all(x.shape[0] == CFG.num_envs for x in jax.tree.leaves(state.env))


# -- 4 forced CPU devices ------------------------------------------------------------
_SHARDED = """
import json, sys
import jax, numpy as np, jaxpg
cfg = jaxpg.Config(**json.loads(sys.argv[1]))
assert len(jax.devices()) == 4 and jax.config.jax_threefry_partitionable
try:
    jaxpg.make_sharded_train(cfg.replace(num_envs=6, num_minibatches=2))
    raise SystemExit("no error for num_envs=6 on 4 devices")
except ValueError as exc:
    error = str(exc)
train = jaxpg.make_sharded_train(cfg)
out = train(jax.random.key(cfg.seed))
hlo = train.lower(jax.random.key(cfg.seed)).compile().as_text()
# Data-parallel minibatch steps: some all-reduce sums a [64, 64] weight gradient.
grad_sum = any("all-reduce(" in l and "f32[64,64]" in l for l in hlo.splitlines())
env_leaves = jax.tree.leaves(out.state.env)
params = jax.tree.leaves(out.state.params)
np.savez(sys.argv[2], error=error, grad_sum=grad_sum,
         episode_return=np.asarray(out.metrics["episode_return"]),
         params=np.concatenate([np.ravel(x) for x in params]),
         env_specs=[str(tuple(x.sharding.spec)) for x in env_leaves],
         env_devices=[len(x.sharding.device_set) for x in env_leaves],
         env_shard_rows=[x.addressable_shards[0].data.shape[0] for x in env_leaves],
         param_specs=[str(tuple(x.sharding.spec)) for x in params])
"""


def test_sharded_train_on_four_devices_equals_one_device(env, reference, tmp_path):
    out = tmp_path / "sharded.npz"
    proc = _python(env, "-c", _SHARDED, json.dumps(CFG.to_dict()), out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(out)
    assert "num_envs=6" in str(got["error"]) and "device count 4" in str(got["error"])
    # Every env leaf is split 4 ways (8 envs → 2 per device); params are replicated.
    assert set(got["env_specs"]) == {"('envs',)"}
    assert set(got["env_devices"]) == {4} and set(got["env_shard_rows"]) == {2}
    assert set(got["param_specs"]) == {"()"}
    assert bool(got["grad_sum"]), "PPO minibatch gradients are not summed over devices"
    _assert_matches(reference, got["episode_return"], got["params"])


def test_cli_devices_4_equals_one_device_and_resumes_exactly(env, reference, tmp_path):
    run = tmp_path / "run"
    proc = _python(env, "-m", "jaxpg", "train", *CLI_ARGS, "--devices", "4", "--out", run, "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["status"] == "completed"
    saved = json.loads((run / "config.json").read_text())
    assert saved["run"]["devices"] == 4 and len(saved["versions"]["devices"]) == 4
    m = read_metrics(run / "metrics.csv")
    assert list(m["update"]) == list(range(1, 33))
    final = _final_checkpoint(run)
    _assert_matches(reference, m["episode_return"], _flat(final["params"]))

    # Resume from update 16 (as if killed after it): the same sharded program again,
    # so the final state is bitwise that of the uninterrupted run.
    for step, path in checkpoint.list_checkpoints(run / "checkpoints"):
        if step > 16:
            path.unlink()
    proc = _python(env, "-m", "jaxpg", "train", "--resume", run, "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "note:" not in proc.stderr  # the saved --devices 4 was kept
    resumed = _final_checkpoint(run)
    for a, b in zip(jax.tree.leaves(final), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert list(read_metrics(run / "metrics.csv")["update"]) == list(range(1, 33))


_CLI_ERRORS = """
import sys
from jaxpg.cli import main
out = sys.argv[1]
base = ["train", "--num-steps", "16", "--total-timesteps", "4096", "--quiet"]
for extra in (["--num-envs", "6", "--devices", "4"], ["--num-envs", "8", "--devices", "5"],
              ["--num-envs", "8", "--devices", "all", "--log-mode", "callback"],
              ["--num-envs", "8", "--devices", "0"]):
    try:
        code = main([*base, *extra, "--out", out])
    except SystemExit as exc:  # argparse
        code = exc.code
    print("exit", code, file=sys.stderr, flush=True)
"""


def test_cli_rejects_devices_it_cannot_use_before_writing(env, tmp_path):
    out = tmp_path / "never"
    proc = _python(env, "-c", _CLI_ERRORS, out)
    err = proc.stderr
    assert proc.returncode == 0, err[-3000:]
    assert err.count("exit 2") == 4, err
    assert "num_envs=6 must be a multiple of the device count 4" in err
    assert "devices=5 must lie in [1, 4]" in err
    assert "--log-mode callback runs on one device only" in err
    assert "expected 'all' or a count >= 1" in err
    assert not out.exists()


# -- two processes × two devices (jax.distributed over gloo) ------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.scale  # two JAX processes at once: CI runs it (.ci/run, cell 1)
def test_two_processes_train_one_run_like_one_device(env, reference, tmp_path):
    port = _free_port()
    env2 = {**env, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    procs = []
    for pid in (0, 1):
        args = [
            "-m",
            "jaxpg",
            "train",
            *CLI_ARGS,
            "--out",
            tmp_path / f"run{pid}",
            "--distributed",
            "--coordinator-address",
            f"localhost:{port}",
            "--num-processes",
            "2",
            "--process-id",
            str(pid),
        ]
        procs.append(
            subprocess.Popen(
                [sys.executable, *map(str, args)],
                env=env2,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        results = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-3000:]
    run = tmp_path / "run0"
    assert not (tmp_path / "run1").exists()  # only process 0 writes
    saved = json.loads((run / "config.json").read_text())
    assert saved["run"]["devices"] == 4 and len(saved["versions"]["devices"]) == 4
    m = read_metrics(run / "metrics.csv")
    _assert_matches(reference, m["episode_return"], _flat(_final_checkpoint(run)["params"]))
