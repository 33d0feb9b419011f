"""Checkpoints, metrics truncation and the run loop's NaN stop (in-process, fast)."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpg import checkpoint
from jaxpg import run as runlib
from jaxpg.config import Config
from jaxpg.progress import COLUMNS, read_metrics, repair_metrics
from jaxpg.runspec import init_state, make_runspec

TINY = Config(
    num_envs=2,
    num_steps=8,
    num_minibatches=2,
    num_epochs=1,
    total_timesteps=2 * 8 * 12,
    hidden_sizes=(8,),
)


def _leaves_equal(a, b) -> bool:
    def raw(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return np.asarray(jax.random.key_data(x))
        return np.asarray(x)

    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(
        raw(x).shape == raw(y).shape and np.array_equal(raw(x), raw(y), equal_nan=True)
        for x, y in zip(la, lb, strict=True)
    )


def test_roundtrip_is_exact_and_leaves_no_temp_files(tmp_path):
    agent = make_runspec(TINY)
    state = init_state(agent, jax.random.key(3))
    path = checkpoint.save(tmp_path, state, TINY, {"wall_time_s": 1.5})
    assert path.name == "ckpt_00000000.msgpack"
    assert sorted(os.listdir(tmp_path)) == [path.name]  # no .tmp left behind
    template = init_state(agent, jax.random.key(99))
    restored, meta = checkpoint.restore(path, template, TINY)
    assert meta == {"wall_time_s": 1.5}
    assert _leaves_equal(state, restored)
    assert jax.dtypes.issubdtype(restored.key.dtype, jax.dtypes.prng_key)


def test_keeps_only_the_newest(tmp_path):
    agent = make_runspec(TINY)
    state = init_state(agent, jax.random.key(0))
    for step in range(5):
        checkpoint.save(tmp_path, state.replace(update_step=jnp.int32(step)), TINY, keep=2)
    assert [s for s, _ in checkpoint.list_checkpoints(tmp_path)] == [3, 4]


def test_incompatible_config_is_one_clear_error(tmp_path):
    agent = make_runspec(TINY)
    path = checkpoint.save(tmp_path, init_state(agent, jax.random.key(0)), TINY)
    other = TINY.replace(hidden_sizes=(16,))
    template = init_state(make_runspec(other), jax.random.key(0))
    with pytest.raises(checkpoint.CheckpointError, match=r"incompatible config: hidden_sizes"):
        checkpoint.restore(path, template, other)


def test_corrupt_file_is_a_checkpoint_error(tmp_path):
    bad = tmp_path / "ckpt_00000001.msgpack"
    bad.write_bytes(b"\x93not msgpack at all")
    with pytest.raises(checkpoint.CheckpointError, match="cannot read checkpoint"):
        checkpoint.read(bad)


def test_truncate_metrics_drops_rows_past_the_checkpoint_and_partial_lines(tmp_path):
    path = tmp_path / "metrics.csv"
    header = ",".join(COLUMNS) + "\n"
    row = lambda n: ",".join([str(n)] + ["1"] * (len(COLUMNS) - 1)) + "\n"  # noqa: E731
    path.write_text(header + "".join(row(n) for n in range(1, 8)) + "8,1,1")
    assert repair_metrics(path, 5).kept == 5
    assert list(read_metrics(path)["update"]) == [1, 2, 3, 4, 5]
    assert repair_metrics(path, 10).kept == 5


def test_nonfinite_update_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    from jaxpg import loop as chunk

    real_update = chunk.update

    def poisoned(agent, state, hp):  # update 7 produces a NaN loss
        new, metrics = real_update(agent, state, hp)
        loss = jnp.where(state.update_step == 6, jnp.nan, metrics["loss"])
        return new, {**metrics, "loss": loss}

    monkeypatch.setattr(chunk, "update", poisoned)
    settings = runlib.RunSettings(checkpoint_every=4, log_every=2, progress=False)
    agent = make_runspec(TINY)
    runlib.prepare_run_dir(tmp_path / "run", TINY, settings, agent.num_updates, argv=[])
    with pytest.raises(runlib.NonFiniteError, match="at update 7;.*checkpoint kept at update 4"):
        runlib.train_run(tmp_path / "run", TINY, settings)
    steps = [s for s, _ in checkpoint.list_checkpoints(tmp_path / "run" / "checkpoints")]
    assert steps == [4]
    assert list(read_metrics(tmp_path / "run" / "metrics.csv")["update"]) == [1, 2, 3, 4, 5, 6]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "nonfinite"
