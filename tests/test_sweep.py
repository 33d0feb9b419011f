"""Sweeps: grid checks, vmap-equals-alone, one compile per static combination,
chunking and resume, and 4 forced CPU devices equal to one device.

Compiles are the cost here (seconds each on a 2-core CPU), so one module-scoped
sweep serves most tests.
"""

import importlib
import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

import jaxpg
from jaxpg import loop as loop_mod
from jaxpg import sharding
from jaxpg.commands import sweep as sweep_cmd
from jaxpg.grid import check_grid, hparams_batch
from jaxpg.update import update

# The module, even if ``jaxpg/__init__`` re-exports the function as ``jaxpg.sweep``.
sweep_mod = importlib.import_module("jaxpg.sweep")
ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = jaxpg.Config(num_envs=2, num_steps=16, total_timesteps=128, num_minibatches=2)
SEEDS = [0, 3, 5]
GRID = {"gae_lambda": [0.9, 0.99], "num_envs": [2, 4]}
RTOL, ATOL = 1e-5, 1e-6


def _flat_params(tree) -> np.ndarray:
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])


@pytest.fixture(scope="module")
def swept():
    """One sweep of 2 static programs × 2 λ × 3 seeds, chunked by a small memory budget.

    The memory budget is patched to 0 bytes, so each program's 6 runs must run as 6
    chunks of one run (the least a chunk can hold on one device); the update
    function is wrapped to count how often the scan body is traced.
    """
    traces = []

    def counting_update(agent, state, hp):
        traces.append(agent.config.num_envs)
        return update(agent, state, hp)

    def small_budget(mesh, fraction=0.5):
        return 0, "test"

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop_mod, "update", counting_update)
        mp.setattr(sharding, "device_memory_budget", small_budget)
        result = sweep_mod.sweep(TINY, seeds=SEEDS, grid=GRID, return_states=True)
    return result, traces


# -- grid checks (nothing compiles) -------------------------------------------------
def test_unknown_field_lists_allowed_fields():
    with pytest.raises(ValueError, match="unknown grid field 'foo'.*allowed:.*lr.*gae_lambda"):
        check_grid(TINY, {"foo": [1]})


@pytest.mark.parametrize(
    "grid,match",
    [
        ({"gamma": [0.9, 1.5]}, r"gamma=1\.5.*\[0, 1\]"),
        ({"gae_lambda": [-0.1]}, r"gae_lambda=-0\.1.*lam.*\[0, 1\]"),
        ({"lr": [0.0]}, r"lr=0\.0.*> 0"),
        ({"num_envs": [0]}, r"num_envs=0.*>= 1"),
        ({"num_minibatches": [3]}, r"num_minibatches.*must divide"),
        ({"seed": [1, 2]}, r"seeds="),
        ({"lr": []}, r"no values"),
        ({"lr": [1e-3, 1e-3]}, r"repeats"),
        ({"lr": [1e-3], "learning_rate": [1e-4]}, r"given twice"),
    ],
)
def test_bad_grid_values_name_field_and_range(grid, match):
    with pytest.raises(ValueError, match=match):
        check_grid(TINY, grid)


def test_static_combination_checked_as_a_whole():
    # Each value alone is valid on TINY (2 envs × 16 steps = 32 samples, 32 minibatches),
    # but num_envs=1 gives 16 samples, which 32 minibatches cannot divide.
    with pytest.raises(ValueError, match="combination"):
        check_grid(TINY, {"num_envs": [1, 2], "num_minibatches": [32]})


def test_aliases_and_split_into_static_and_traced():
    g = check_grid(
        TINY, {"learning_rate": [1e-3], "gae_lambda": [0.9, 0.95], "hidden_sizes": [(8,), (16, 16)]}
    )
    assert g.traced == {"lr": (1e-3,), "lam": (0.9, 0.95)}
    assert g.static == {"hidden_sizes": ((8,), (16, 16))}
    assert len(g.static_points) == 2 and len(g.traced_points) == 2


def test_hparams_batch_is_point_major():
    hp = hparams_batch(TINY, [{"lam": 0.9}, {"lam": 0.99, "lr": 1e-3}], repeats=2)
    np.testing.assert_array_equal(hp.lam, np.float32([0.9, 0.9, 0.99, 0.99]))
    np.testing.assert_array_equal(hp.lr, np.float32([TINY.lr, TINY.lr, 1e-3, 1e-3]))
    assert hp.gamma.dtype == np.float32


def test_bad_seeds_rejected_before_compiling():
    for seeds in (0, [], [1, 1], [-1]):
        with pytest.raises(ValueError, match="seeds"):
            sweep_mod.sweep(TINY, seeds=seeds)


def test_cli_grid_parsing():
    grid = sweep_cmd.parse_grid(
        [
            "lr=1e-4,3e-4",
            "gae-lambda=0.9",
            "hidden_sizes=64x64,32",
            "anneal_lr=false,true",
            "estimator=vpg,ppo",
        ]
    )
    assert grid == {
        "lr": [1e-4, 3e-4],
        "gae_lambda": [0.9],
        "hidden_sizes": [(64, 64), (32,)],
        "anneal_lr": [False, True],
        "estimator": ["vpg", "ppo"],
    }
    with pytest.raises(sweep_cmd.CommandError, match="unknown grid field"):
        sweep_cmd.parse_grid(["bogus=1"])
    with pytest.raises(sweep_cmd.CommandError, match="num_envs"):
        sweep_cmd.parse_grid(["num_envs=two"])


def test_round_up():
    assert [sharding.round_up(n, 4) for n in (1, 4, 5, 8)] == [4, 4, 8, 8]


# -- the sweep itself ------------------------------------------------------------
def test_layout_and_stats(swept):
    result, _ = swept
    assert [p["num_envs"] for p in result.points] == [2, 2, 4, 4]
    assert [p["lam"] for p in result.points] == [0.9, 0.99, 0.9, 0.99]
    assert len(result.runs) == 12 and result.seeds == SEEDS
    assert [r.seed for r in result.runs[:3]] == SEEDS
    # Updates: 128 // (2 envs × 16) = 4 and 128 // (4 × 16) = 2.
    assert result.runs[0].episode_return.shape == (4,)
    assert result.runs[-1].episode_return.shape == (2,)
    assert sorted(row["rank"] for row in result.summary) == [1, 2, 3, 4]
    for row in result.summary:
        finals = [r.final_return for r in result.runs if r.point == row["point"]]
        assert row["mean"] == pytest.approx(np.nanmean(finals))


def test_compiles_once_per_static_combination(swept):
    result, traces = swept
    assert traces == [2, 4]  # traced once per program, not per chunk or run
    for info in result.programs:
        assert info.compiles == 1
        assert info.num_chunks == 6 and info.chunk == 1  # the budget forced chunking


@pytest.mark.parametrize("point,seed_index", [(1, 1), (2, 0)])
def test_run_equals_training_alone(swept, point, seed_index):
    result, _ = swept
    values = result.points[point]
    config = TINY.replace(num_envs=values["num_envs"], lam=values["lam"])
    alone = jax.jit(jaxpg.make_train(config))(jax.random.key(SEEDS[seed_index]))
    run_index = point * len(SEEDS) + seed_index
    run = result.runs[run_index]
    np.testing.assert_allclose(
        run.episode_return, alone.metrics["episode_return"], rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(run.env_steps, alone.metrics["env_steps"])
    program, local = divmod(run_index, 2 * len(SEEDS))
    swept_params = jax.tree.map(lambda x: x[local], result.states[program].params)
    np.testing.assert_allclose(
        _flat_params(swept_params), _flat_params(alone.state.params), rtol=RTOL, atol=ATOL
    )


def test_hyperparameters_reach_the_runs(swept):
    result, _ = swept
    params = _flat_params(jax.tree.map(lambda x: x[0], result.states[0].params))
    other = _flat_params(jax.tree.map(lambda x: x[3], result.states[0].params))  # λ = 0.99
    assert not np.allclose(params, other)


_MULTI_DEVICE = """
import json, sys
import jax, numpy as np, jaxpg
from jaxpg.sweep import sweep
cfg = jaxpg.Config(**json.loads(sys.argv[1]))
res = sweep(cfg, seeds={seeds}, grid={{"gae_lambda": [0.9, 0.99]}}, return_states=True)
info = res.programs[0]
leaf = jax.tree.leaves(res.states[0].params)[0]
np.savez(sys.argv[2], curves=np.stack([r.episode_return for r in res.runs]),
         params=np.stack([np.concatenate([np.ravel(x[i]) for x in
                 jax.tree.leaves(res.states[0].params)]) for i in range(len(res.runs))]),
         devices=len(jax.devices()), num_devices=info.num_devices, chunk=info.chunk,
         num_chunks=info.num_chunks,
         leaf_devices=len(leaf.sharding.device_set))
"""


def test_four_devices_equal_one_device(swept, tmp_path):
    result, _ = swept
    out = tmp_path / "multi.npz"
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(ROOT),
    }
    code = _MULTI_DEVICE.format(seeds=SEEDS)
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(TINY.to_dict()), str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(out)
    assert int(got["devices"]) == 4 and int(got["num_devices"]) == 4
    # 6 runs padded to 8, a multiple of the 4 devices, in one chunk.
    assert int(got["chunk"]) == 8 and int(got["num_chunks"]) == 1
    assert int(got["leaf_devices"]) == 4  # the outputs really live on all 4
    single = result.runs[:6]  # program num_envs=2: the same config and run order
    np.testing.assert_allclose(
        got["curves"], np.stack([r.episode_return for r in single]), rtol=RTOL, atol=ATOL
    )
    params = [
        _flat_params(jax.tree.map(lambda x, i=i: x[i], result.states[0].params)) for i in range(6)
    ]
    np.testing.assert_allclose(got["params"], np.stack(params), rtol=1e-4, atol=1e-5)


# -- command line ------------------------------------------------------------------
def _cli(out, *extra):
    args = [
        "sweep",
        "--seeds",
        "2",
        "--grid",
        "learning_rate=1e-3,3e-4",
        "--num-envs",
        "2",
        "--num-steps",
        "16",
        "--total-timesteps",
        "64",
        "--num-minibatches",
        "2",
        "--chunk",
        "2",
        "--out",
        str(out),
        "--no-plot",
        *extra,
    ]
    from jaxpg.cli import main

    return main(args)


def test_cli_writes_files_and_resumes(tmp_path, capsys):
    out = tmp_path / "sw"
    assert _cli(out, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_runs"] == 4 and report["programs"][0]["num_chunks"] == 2
    for name in ("sweep.csv", "summary.csv", "config.json"):
        assert (out / name).exists()
    first = (out / "sweep.csv").read_text()
    assert len(first.strip().splitlines()) == 1 + 4
    assert len((out / "summary.csv").read_text().strip().splitlines()) == 1 + 2

    chunks = sorted((out / "chunks").glob("*.npz"))
    assert len(chunks) == 2
    chunks[1].unlink()  # as if interrupted during the second chunk
    assert _cli(out, "--resume", "--json") == 0
    captured = capsys.readouterr()
    again = json.loads(captured.out)
    assert again["resumed_runs"] == 2 and again["programs"][0]["num_chunks"] == 1
    assert "resuming" in captured.err
    assert (out / "sweep.csv").read_text() == first

    # A different sweep in the same directory is refused, with a one-line error.
    from jaxpg.cli import main

    code = main(
        [
            "sweep",
            "--seeds",
            "3",
            "--num-envs",
            "2",
            "--num-steps",
            "16",
            "--total-timesteps",
            "64",
            "--num-minibatches",
            "2",
            "--out",
            str(out),
        ]
    )
    assert code == 2 and "different sweep" in capsys.readouterr().err


def test_cli_rejects_bad_grid_before_compiling(tmp_path, capsys):
    from jaxpg.cli import main

    assert main(["sweep", "--grid", "gamma=0.9,1.5", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxpg: error:") and "gamma=1.5" in err and "[0, 1]" in err


def test_chunk_plan_from_budget():
    info = sweep_mod.ProgramInfo(
        static={},
        config=TINY,
        num_runs=100,
        num_devices=4,
        budget_bytes=10_000,
        estimated_bytes_per_run=1_000,
    )
    # 10 runs fit per device → chunks of 40 runs over 4 devices.
    assert sweep_mod._plan_chunk(info, 100, None) == 40
    # Everything fits: one chunk, padded to a multiple of the devices (30 → 32).
    assert sweep_mod._plan_chunk(info, 30, None) == 32
    # An explicit chunk wins, rounded up to the device count, capped by the work left.
    assert sweep_mod._plan_chunk(info, 100, 5) == 8
    assert sweep_mod._plan_chunk(info, 3, 64) == 4
    # Nothing fits: still one run per device (the smallest chunk there is).
    info.budget_bytes = 10
    assert sweep_mod._plan_chunk(info, 100, None) == 4


def test_chunk_shrinks_when_compiled_program_is_over_budget():
    info = sweep_mod.ProgramInfo(
        static={}, config=TINY, num_runs=64, num_devices=2, budget_bytes=1000
    )
    # 32 runs (16 per device) compiled to 4000 B per device = 250 B per run → 4 per device.
    info.compiled_bytes_per_device = 4000
    assert sweep_mod._shrink_to_compiled(info, 32) == 8
    info.compiled_bytes_per_device = 900  # within budget: keep the chunk
    assert sweep_mod._shrink_to_compiled(info, 32) is None
    info.compiled_bytes_per_device = 0  # memory_analysis unavailable
    assert sweep_mod._shrink_to_compiled(info, 32) is None
    info.compiled_bytes_per_device = 10**6  # nothing fits: one run per device
    assert sweep_mod._shrink_to_compiled(info, 32) == 2
    assert sweep_mod._shrink_to_compiled(info, 2) is None  # already the smallest


def test_memory_estimate_is_conservative(swept):
    result, _ = swept
    for info in result.programs:
        compiled_per_run = info.compiled_bytes_per_device * info.num_devices / info.chunk
        assert compiled_per_run > 0
        assert info.estimated_bytes_per_run >= compiled_per_run


def test_cpu_budget_comes_from_host_ram():
    budget, source = sharding.device_memory_budget(sharding.run_mesh(), 0.5)
    assert source in ("host-ram", "device") and budget > 0


def test_second_sweep_with_new_values_compiles_nothing(swept):
    # Same static config, chunk and outputs as the fixture's first program; new seeds and λ.
    again = sweep_mod.sweep(
        TINY, seeds=[7], grid={"gae_lambda": [0.5, 0.7]}, chunk=1, return_states=True
    )
    assert [p.compiles for p in again.programs] == [0]
    alone = jax.jit(jaxpg.make_train(TINY.replace(lam=0.7)))(jax.random.key(7))
    np.testing.assert_allclose(
        again.runs[1].episode_return, alone.metrics["episode_return"], rtol=RTOL, atol=ATOL
    )
