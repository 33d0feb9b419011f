"""Fault suite: damaged files, full disks, vanished files, concurrent runs (in-process, fast).

Each test injects one fault and asserts exactly what survives. Disk faults are
injected by replacing :func:`jaxpg.files._write`, the one place bytes leave the
process, so no real disk has to fill up.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpg import checkpoint, files
from jaxpg import run as runlib
from jaxpg.cli import main
from jaxpg.config import Config
from jaxpg.lock import LOCK_NAME, LockedError, RunLock
from jaxpg.progress import COLUMNS

ROOT = Path(__file__).resolve().parents[1]
TINY = Config(
    num_envs=2,
    num_steps=8,
    num_minibatches=2,
    num_epochs=1,
    total_timesteps=2 * 8 * 12,
    hidden_sizes=(8,),
)
SETTINGS = runlib.RunSettings(checkpoint_every=4, log_every=2, progress=False)
CKPT = "checkpoints"


def _fresh(run_dir: Path) -> Path:
    runlib.prepare_run_dir(run_dir, TINY, SETTINGS, 12, argv=[])
    return run_dir


def _steps(run_dir: Path) -> list[int]:
    return [s for s, _ in checkpoint.list_checkpoints(run_dir / CKPT)]


def _rows(run_dir: Path) -> list[int]:
    text = (run_dir / "metrics.csv").read_text()
    assert text.endswith("\n"), "a half row was left behind"
    lines = text.splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert all(len(ln.split(",")) == len(COLUMNS) for ln in lines[1:])
    return [int(ln.split(",")[0]) for ln in lines[1:]]


def _params(run_dir: Path):
    tree, _, _ = checkpoint.read(checkpoint.list_checkpoints(run_dir / CKPT)[-1][1])
    return jax.tree.leaves(tree["params"])


def _same(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


@pytest.fixture(scope="module", autouse=True)
def compile_cache(tmp_path_factory):
    """A persistent compilation cache: the tiny run's chunk is compiled once, not per test."""
    old = (
        jax.config.jax_compilation_cache_dir,
        jax.config.jax_persistent_cache_min_compile_time_secs,
    )
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("jax_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    yield
    jax.config.update("jax_compilation_cache_dir", old[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", old[1])


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run: 12 updates, checkpoints at 4, 8, 12."""
    run_dir = _fresh(tmp_path_factory.mktemp("ref") / "run")
    summary = runlib.train_run(run_dir, TINY, SETTINGS)
    assert summary["status"] == "completed" and _steps(run_dir) == [4, 8, 12]
    return run_dir


def _copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _inject(monkeypatch, fail):
    """Make ``files._write`` raise the OSError ``fail(path, mode)`` returns (or write)."""
    real = files._write

    def faulty(fd, data, path, mode):
        exc = fail(Path(path), mode)
        if exc is not None:
            raise exc
        real(fd, data, path, mode)

    monkeypatch.setattr(files, "_write", faulty)


ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
EIO = OSError(errno.EIO, os.strerror(errno.EIO))


# -- checksums ------------------------------------------------------------------
def test_sealed_files_detect_flipped_and_missing_bytes(tmp_path):
    path = tmp_path / "f"
    files.write_sealed(path, b"payload" * 100)
    assert files.read_sealed(path) == b"payload" * 100
    blob = bytearray(path.read_bytes())
    blob[10] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(files.IntegrityError, match="is damaged: SHA-256"):
        files.read_sealed(path)
    path.write_bytes(files.seal(b"payload" * 100)[:-5])
    with pytest.raises(files.IntegrityError, match="no checksum trailer"):
        files.read_sealed(path)
    with pytest.raises(files.IntegrityError, match="no checksum trailer"):
        files.unseal(b"")


def test_corrupt_newest_checkpoint_resume_falls_back_and_is_bitwise(reference, tmp_path, capsys):
    run_dir = _copy_run(reference, tmp_path / "run")
    newest = run_dir / CKPT / checkpoint.checkpoint_name(12)
    blob = bytearray(newest.read_bytes())
    blob[2000:2064] = b"\xff" * 64  # 64 bytes inside the parameters
    newest.write_bytes(bytes(blob))
    with pytest.raises(checkpoint.CheckpointError, match="is damaged"):
        checkpoint.read(newest)
    # eval takes the newest valid checkpoint and says which
    config, _, step, _ = runlib.load_policy(run_dir)
    err = capsys.readouterr().err
    assert step == 8 and "ckpt_00000012.msgpack is damaged" in err and "ckpt_00000008" in err
    # resume continues from update 8 and recomputes 9..12 exactly
    runlib.train_run(
        run_dir, TINY, runlib.dataclasses.replace(SETTINGS, progress=True), resume=True
    )
    err = capsys.readouterr().err
    assert "resuming from update 8 (ckpt_00000008.msgpack)" in err
    assert _steps(run_dir) == [4, 8, 12] and _rows(run_dir) == list(range(1, 13))
    assert _same(_params(reference), _params(run_dir))


def test_truncated_checkpoint_is_skipped(reference, tmp_path, capsys):
    run_dir = _copy_run(reference, tmp_path / "run")
    for step in (8, 12):
        path = run_dir / CKPT / checkpoint.checkpoint_name(step)
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    _, _, step, _ = runlib.load_policy(run_dir)
    assert step == 4 and capsys.readouterr().err.count("no checksum trailer") == 2
    assert main(["eval", str(run_dir / CKPT / checkpoint.checkpoint_name(8))]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ckpt_00000008.msgpack has no checksum trailer" in err[0]


def test_all_checkpoints_bad_resume_refuses_then_from_scratch(reference, tmp_path, capsys):
    run_dir = _copy_run(reference, tmp_path / "run")
    for _, path in checkpoint.list_checkpoints(run_dir / CKPT):
        path.write_bytes(b"\x00" * 100)
    before = {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    code = main(["train", "--resume", str(run_dir), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert "none of its 3 checkpoint(s) is valid" in err[-1] and "--from-scratch" in err[-1]
    after = {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert after == before  # nothing was changed, nothing retrained
    with pytest.raises(runlib.RunFailed, match="no valid checkpoint"):
        runlib.load_policy(run_dir)
    assert main(["eval", str(run_dir)]) == 1
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--quiet", "--from-scratch"]) == 0
    assert _rows(run_dir) == list(range(1, 13)) and _same(_params(reference), _params(run_dir))


# -- disk faults ----------------------------------------------------------------
def test_enospc_on_a_checkpoint_stops_keeps_the_rest_and_resume_is_bitwise(
    reference, tmp_path, monkeypatch
):
    run_dir = _fresh(tmp_path / "run")
    _inject(monkeypatch, lambda p, m: ENOSPC if p.name == "ckpt_00000008.msgpack" else None)
    with pytest.raises(runlib.RunWriteError) as info:
        runlib.train_run(run_dir, TINY, SETTINGS)
    msg = str(info.value)
    assert "ckpt_00000008.msgpack: No space left on device (ENOSPC)" in msg
    assert "last checkpoint kept at update 4" in msg and "--resume" in msg
    assert _steps(run_dir) == [4]
    assert not list((run_dir / CKPT).glob(".*"))  # no temp file left
    rows = _rows(run_dir)
    assert rows == list(range(1, len(rows) + 1)) and len(rows) >= 8
    summary = _summary(run_dir)
    assert summary["status"] == "failed" and summary["last_checkpoint_update"] == 4
    assert "ENOSPC" in summary["error"]
    monkeypatch.undo()  # space freed
    runlib.train_run(run_dir, TINY, SETTINGS, resume=True)
    assert _rows(run_dir) == list(range(1, 13)) and _same(_params(reference), _params(run_dir))
    assert _summary(run_dir)["status"] == "completed"


def test_eio_on_metrics_keeps_whole_rows(tmp_path, monkeypatch, capsys):
    run_dir = _fresh(tmp_path / "run")
    calls = []

    def fail(path, mode):
        if path.name == "metrics.csv" and mode == "append":
            calls.append(1)
            return EIO if len(calls) >= 3 else None
        return None

    _inject(monkeypatch, fail)
    with pytest.raises(runlib.RunWriteError, match=r"metrics.csv: Input/output error \(EIO\)"):
        runlib.train_run(run_dir, TINY, SETTINGS)
    rows = _rows(run_dir)  # whole rows only, the failed block was cut back
    assert rows == list(range(1, len(rows) + 1)) and len(rows) < 12
    summary = _summary(run_dir)
    # updates_done is how far the computation got (its rows, not the file's count)
    assert summary["status"] == "failed" and len(rows) <= summary["updates_done"] <= 12
    assert summary["last_checkpoint_update"] == (_steps(run_dir) or [None])[-1]


TINY_ARGS = [
    *("--num-envs 2 --num-steps 8 --num-minibatches 2 --num-epochs 1".split()),
    *("--total-timesteps 192 --hidden-sizes 8 --checkpoint-every 4 --log-every 2".split()),
    "--quiet",
]


def test_disk_full_everywhere_summary_is_overwritten_in_place(tmp_path, monkeypatch, capsys):
    """The disk fills mid-run: no new file, no append; summary.json's padded bytes take it."""
    state = {"appends": 0, "full": False}

    def full(path, mode):
        if mode == "append":
            state["appends"] += 1
            state["full"] = state["full"] or state["appends"] >= 3
        return ENOSPC if state["full"] and mode != "inplace" else None

    _inject(monkeypatch, full)
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--out", "run", *TINY_ARGS])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "No space left on device (ENOSPC)" in err[0]
    run_dir = tmp_path / "run"
    summary = _summary(run_dir)
    assert summary["status"] == "failed" and "ENOSPC" in summary["error"]
    assert summary["last_checkpoint_update"] == (_steps(run_dir) or [None])[-1]
    rows = _rows(run_dir)
    assert rows == list(range(1, len(rows) + 1)) and summary["updates_done"] >= len(rows)
    assert not (run_dir / LOCK_NAME).exists()  # the lock went with the run
    monkeypatch.undo()  # space freed
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--resume", "run", "--quiet"]) == 0
    assert _rows(run_dir) == list(range(1, 13)) and _summary(run_dir)["status"] == "completed"


def test_deleted_metrics_file_is_restored_and_the_run_stops(reference, tmp_path, monkeypatch):
    run_dir = _fresh(tmp_path / "run")
    real = files._write
    calls = []

    def delete_then_write(fd, data, path, mode):
        if Path(path).name == "metrics.csv" and mode == "append":
            calls.append(1)
            if len(calls) == 3:
                os.unlink(path)  # deleted by a user mid-run
        real(fd, data, path, mode)

    monkeypatch.setattr(files, "_write", delete_then_write)
    with pytest.raises(runlib.RunWriteError, match="metrics.csv: the file was deleted"):
        runlib.train_run(run_dir, TINY, SETTINGS)
    rows = _rows(run_dir)  # the rows came back from the still-open file
    assert rows == list(range(1, len(rows) + 1)) and len(rows) >= 6
    summary = _summary(run_dir)
    assert summary["status"] == "failed" and summary["updates_done"] == len(rows)
    monkeypatch.undo()
    runlib.train_run(run_dir, TINY, SETTINGS, resume=True)
    assert _rows(run_dir) == list(range(1, 13)) and _same(_params(reference), _params(run_dir))


def test_nan_stop_summary_names_the_real_checkpoint(tmp_path, monkeypatch, capsys):
    from jaxpg import loop as chunk

    real_update = chunk.update

    def poisoned(agent, state, hp):  # update 7 produces a NaN loss
        new, metrics = real_update(agent, state, hp)
        return new, {**metrics, "loss": jnp.where(state.update_step == 6, jnp.nan, 1.0)}

    monkeypatch.setattr(chunk, "update", poisoned)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--out", "run", *TINY_ARGS]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "NaN/inf at update 7" in err[0]
    summary = _summary(tmp_path / "run")
    assert summary["status"] == "nonfinite" and summary["last_checkpoint_update"] == 4
    assert _steps(tmp_path / "run") == [4] and not (tmp_path / "run" / LOCK_NAME).exists()


# -- locks ------------------------------------------------------------------------
def test_lock_refuses_a_second_owner_and_is_released(tmp_path, capsys):
    run_dir = _fresh(tmp_path / "run")
    with RunLock(run_dir):
        with pytest.raises(LockedError, match=f"in use by PID {os.getpid()}"):
            RunLock(run_dir).acquire()
        assert main(["train", "--resume", str(run_dir), "--quiet"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"is in use by PID {os.getpid()}" in err[0]
    assert not (run_dir / LOCK_NAME).exists()
    assert _steps(run_dir) == []  # the refused resume trained nothing


def test_stale_lock_of_a_dead_pid_is_taken_over(tmp_path, capsys):
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = int(proc.stdout)
    import socket

    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead, "host": socket.gethostname()}))
    with RunLock(tmp_path) as lock:
        assert lock.stale_owner["pid"] == dead
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert f"stale lock of PID {dead}" in capsys.readouterr().err
    assert not (tmp_path / LOCK_NAME).exists()


def test_concurrent_process_is_refused_and_a_killed_one_leaves_a_stale_lock(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from jaxpg.lock import RunLock\n"
            f"with RunLock({str(tmp_path)!r}):\n print('held', flush=True); time.sleep(120)",
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError, match=f"in use by PID {holder.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait(timeout=60)
    assert (tmp_path / LOCK_NAME).exists()  # SIGKILL cannot clean up
    with RunLock(tmp_path, quiet=True) as lock:
        assert lock.stale_owner["pid"] == holder.pid


def test_lock_released_when_the_run_raises(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(runlib, "train_run", boom)
    assert main(["train", "--out", "run", "--quiet", "--total-timesteps", "4096"]) == 130
    assert not (tmp_path / "run" / LOCK_NAME).exists()
    assert "interrupted" in capsys.readouterr().err


# -- sweep chunks ------------------------------------------------------------------
def test_damaged_sweep_chunk_is_retrained_alone(tmp_path, capsys):
    from tests.test_sweep import _cli

    out = tmp_path / "sw"
    assert _cli(out, "--json") == 0
    first = (out / "sweep.csv").read_text()
    capsys.readouterr()
    chunks = sorted((out / "chunks").glob("*.npz"))
    assert len(chunks) == 2
    chunks[0].write_bytes(chunks[0].read_bytes()[:-200])  # truncated
    assert _cli(out, "--json") == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["resumed_runs"] == 2  # the good chunk; only the damaged one's 2 runs rerun
    assert f"damaged chunk {chunks[0].name}" in captured.err
    assert (out / "chunks" / (chunks[0].name + ".damaged")).exists()
    assert (out / "sweep.csv").read_text() == first
    assert sorted((out / "chunks").glob("*.npz")) == chunks
    assert not (out / LOCK_NAME).exists()


def test_exit_codes(tmp_path, monkeypatch, capsys):
    """0 done, 1 failed run, 2 usage error, 130 interrupted (each case also tested above)."""
    from jaxpg.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, exit_code

    assert (EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED) == (0, 1, 2, 130)
    assert exit_code(files.WriteFailed("x", "boom")) == 1
    assert exit_code(runlib.NonFiniteError(3, None, tmp_path)) == 1
    assert exit_code(LockedError("busy")) == 1
    assert exit_code(ValueError("bad")) == 2
    assert exit_code(RuntimeError("a bug")) is None  # a traceback, not a one-liner
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["train", "--num-envs", "x"])
    assert info.value.code == 2
    code = main(["train", "--out", "r", *TINY_ARGS])
    assert code == 0 and _summary(tmp_path / "r")["status"] == "completed"


def test_eval_gif_without_renderer_fails_before_loading(reference, monkeypatch, capsys):
    def never(*a, **k):
        raise AssertionError("the checkpoint was loaded")

    monkeypatch.setattr(runlib, "load_policy", never)
    monkeypatch.setitem(sys.modules, "pygame", None)  # import pygame -> ImportError
    assert main(["eval", str(reference), "--gif", str(reference / "x.gif")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs pygame" in err[0]  # never() was not reached


# -- issue 24: nothing lost, round two ------------------------------------------------
def _config_json(run_dir: Path) -> dict:
    return json.loads((run_dir / "config.json").read_text())


def test_sweep_out_on_a_train_run_is_refused_and_changes_nothing(reference, tmp_path, capsys):
    run_dir = _copy_run(reference, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    tiny = "--num-envs 2 --num-steps 8 --num-minibatches 2 --total-timesteps 192 --quiet"
    assert main(["sweep", "--out", str(run_dir), "--seeds", "1", *tiny.split()]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a train directory (made by jaxpg train)" in err[0]
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def test_train_resume_of_a_sweep_directory_is_refused(tmp_path, capsys):
    from jaxpg import rundir

    sweep_dir = tmp_path / "sw"
    sweep_dir.mkdir()
    record = {**rundir.identity("sweep", TINY.to_dict()), "config": TINY.to_dict()}
    record |= {"grid": {"lr": [1e-3]}, "seeds": [0]}
    (sweep_dir / "config.json").write_text(json.dumps(record))
    assert main(["train", "--resume", str(sweep_dir), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a sweep directory (made by jaxpg sweep)" in err[0]
    assert sorted(p.name for p in sweep_dir.iterdir()) == ["config.json"]
    # an older sweep record (no "kind") is recognised by its keys
    del record["kind"]
    (sweep_dir / "config.json").write_text(json.dumps(record))
    assert main(["train", "--resume", str(sweep_dir), "--quiet"]) == 2
    assert "is a sweep directory" in capsys.readouterr().err


def test_config_json_edited_between_stop_and_resume_is_refused_naming_the_field(
    reference, tmp_path, capsys
):
    run_dir = _copy_run(reference, tmp_path / "run")
    record = _config_json(run_dir)
    assert record["kind"] == "train" and len(record["config_sha256"]) == 64
    record["config"]["lr"] = 0.5
    (run_dir / "config.json").write_text(json.dumps(record))
    before = (run_dir / "metrics.csv").read_bytes()
    assert main(["train", "--resume", str(run_dir), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was edited after the run was made: lr (made with" in err[0]
    assert "the file now says 0.5" in err[0]
    assert (run_dir / "metrics.csv").read_bytes() == before
    assert main(["eval", str(run_dir), "--episodes", "1"]) == 2  # eval trusts it no more
    assert "was edited after the run was made" in capsys.readouterr().err


def test_garbled_metrics_row_is_quarantined_and_progress_comes_from_the_checkpoint(
    reference, tmp_path, capsys
):
    run_dir = _copy_run(reference, tmp_path / "run")
    truth = _summary(reference)
    path = run_dir / "metrics.csv"
    lines = path.read_text().splitlines(keepends=True)
    cells = lines[5].split(",")  # the row of update 5 (line 6 of the file)
    cells[COLUMNS.index("episode_return")] = "1x.5"
    lines[5] = ",".join(cells)
    lines[8] = lines[8][:10] + "\xff\xfe" + lines[8][10:]  # update 8: not text
    path.write_bytes("".join(lines).encode("latin-1"))
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--quiet", "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["status"] == "completed"
    assert summary["updates_done"] == 12 == truth["updates_done"]
    assert summary["env_steps"] == truth["env_steps"]
    assert summary["final_return"] == truth["final_return"]
    assert _rows(run_dir) == [1, 2, 3, 4, 6, 7, 9, 10, 11, 12]  # intact rows all kept
    quarantine = (run_dir / "metrics.quarantine.csv").read_text(errors="replace")
    assert "metrics.csv:6: 5," in quarantine and "metrics.csv:9: 8," in quarantine
    assert "line 6 is damaged (episode_return='1x.5' is not a number)" in captured.err
    assert "line 9 is damaged (it holds bytes that are not text)" in captured.err
    assert "metrics.quarantine.csv" in captured.err
    assert "lost before this resume" not in captured.err


def test_read_metrics_skips_damaged_rows_instead_of_failing(tmp_path):
    from jaxpg.progress import read_metrics

    path = tmp_path / "metrics.csv"
    row = lambda n: ",".join([str(n)] + ["1"] * (len(COLUMNS) - 1)) + "\n"  # noqa: E731
    path.write_bytes((",".join(COLUMNS) + "\n" + row(1) + "2,zz\n" + row(3)).encode() + b"\x80\n")
    assert list(read_metrics(path)["update"]) == [1, 3]


def _copy_checkpoint_as_other_env(src: Path, dst: Path, env: str) -> None:
    """``src`` with its recorded config's env changed, sealed again (a foreign checkpoint)."""
    import flax.serialization

    payload = flax.serialization.msgpack_restore(files.read_sealed(src))
    config = json.loads(payload["config"])
    config["env"] = env
    payload["config"] = json.dumps(config)
    dst.write_bytes(files.seal(flax.serialization.msgpack_serialize(payload)))


def test_eval_refuses_a_newest_checkpoint_of_another_env(reference, tmp_path, capsys):
    run_dir = _copy_run(reference, tmp_path / "run")
    newest = checkpoint.list_checkpoints(run_dir / CKPT)[-1][1]
    _copy_checkpoint_as_other_env(newest, run_dir / CKPT / "ckpt_00000016.msgpack", "Acrobot-v1")
    assert main(["eval", str(run_dir), "--episodes", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not belong to the run" in err[0]
    assert "env='Acrobot-v1' (the run has 'CartPole-v1')" in err[0]


def test_eval_of_a_live_run_is_not_fooled_by_pruned_checkpoints(reference, tmp_path, capsys):
    run_dir = _copy_run(reference, tmp_path / "run")
    listed = checkpoint.list_checkpoints(run_dir / CKPT)
    calls = []

    def relist():  # the first listing names checkpoints that are then pruned
        calls.append(1)
        if len(calls) == 1:
            return [*listed, (16, run_dir / CKPT / "ckpt_00000016.msgpack")]
        return listed

    found = runlib.newest_valid_checkpoint(
        run_dir / CKPT, lambda p: checkpoint.read(p)[1], relist=relist
    )
    assert found is not None and found[1] == listed[-1][1] and found[2] == []
    assert "damaged" not in capsys.readouterr().err


def test_sigterm_checkpoints_marks_interrupted_releases_the_lock_exit_143(tmp_path):
    """A real SIGTERM to a real ``jaxpg train`` (what kill, Slurm and CI timeouts send)."""
    import signal
    import time

    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "jaxpg", "train", "--out", str(run_dir), *TINY_ARGS]
    cmd[cmd.index("--total-timesteps") + 1] = str(2 * 8 * 10**6)  # more than we wait for
    cmd[cmd.index("--checkpoint-every") + 1] = "100000"  # the only checkpoint: the stop's
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            metrics = run_dir / "metrics.csv"
            if metrics.exists() and len(metrics.read_text().splitlines()) > 3:
                break
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    summary = _summary(run_dir)
    assert summary["status"] == "interrupted" and summary["signal"] == "SIGTERM"
    assert _steps(run_dir) == [summary["updates_done"]] and summary["updates_done"] > 0
    assert summary["last_checkpoint_update"] == summary["updates_done"]
    assert _rows(run_dir) == list(range(1, summary["updates_done"] + 1))
    assert not (run_dir / LOCK_NAME).exists()
    assert "SIGTERM: saving a checkpoint" in err and "jaxpg train --resume" in err


def test_sweep_flags_a_diverged_point_and_ranks_it_after_the_healthy_ones(caplog):
    """Adam's first step of lr=1e30 makes the parameters non-finite: that point diverged."""
    import logging

    from jaxpg.sweep import sweep

    tiny = TINY.replace(total_timesteps=2 * 8 * 4)
    with caplog.at_level(logging.WARNING, logger="jaxpg.sweep"):
        result = sweep(tiny, 2, {"lr": [1e30, 1e-3]})
    rows = {row["lr"]: row for row in result.summary}
    assert rows[1e30]["diverged"] == 2 and rows[1e-3]["diverged"] == 0
    assert rows[1e-3]["rank"] == 1 and rows[1e30]["rank"] == 2
    assert [r.diverged_at for r in result.runs] == [1, 1, 0, 0]
    assert all(np.isnan(r.episode_return).all() for r in result.runs[:2])
    assert "point 0 (lr=1e+30): 2 seed(s) diverged" in caplog.text


def test_json_stdout_is_one_document_whatever_else_prints(tmp_path, monkeypatch):
    """Suite import noise (Python prints and C writes to fd 1) goes to stderr under --json."""
    script = (
        "import os, sys\n"
        "from jaxpg.commands import common\n"
        "from jaxpg.cli import main\n"
        "def noisy(args):\n"
        "    print('Failed to import warp')\n"
        "    os.write(1, b'ALSA lib noise\\n')\n"
        "    common.emit_json({'ok': True})\n"
        "    return 0\n"
        "import jaxpg.commands.eval as ev\n"
        "ev.run = noisy\n"
        "sys.exit(main(['eval', '.', '--json']))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"ok": True}
    assert "Failed to import warp" in done.stderr and "ALSA lib noise" in done.stderr


def test_a_missing_suite_extra_is_one_line_naming_the_pip_install(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "navix", None)  # import navix -> ModuleNotFoundError
    code = main(["train", "--env", "navix/Navix-Empty-5x5-v0", "--out", "r", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and 'pip install "jaxpg[navix]"' in err[0], err
    assert not (tmp_path / "r").exists()


def test_lock_path_that_is_a_directory_is_one_line(tmp_path, capsys):
    run_dir = tmp_path / "run"
    (run_dir / LOCK_NAME).mkdir(parents=True)
    with pytest.raises(LockedError, match=r"cannot take the lock \.jaxpg\.lock: Is a directory"):
        RunLock(run_dir).acquire()
    assert main(["train", "--resume", str(run_dir), "--quiet"]) == 2  # not a run: no config
    capsys.readouterr()


def test_read_only_run_directory_is_one_line_exit_1(reference, tmp_path, monkeypatch, capsys):
    run_dir = _copy_run(reference, tmp_path / "run")
    real_open = os.open

    def read_only(path, flags, *a, **k):  # root ignores chmod: refuse writes here instead
        if str(path).startswith(str(run_dir)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", read_only)
    assert main(["train", "--resume", str(run_dir), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Read-only file system (EROFS)" in err[0], err


def test_run_directory_deleted_mid_run_does_not_advise_a_resume(tmp_path, monkeypatch):
    import shutil

    run_dir = _fresh(tmp_path / "run")

    def delete_then_write(path, mode):
        if path.name.startswith("ckpt_") and run_dir.exists():
            shutil.rmtree(run_dir)
            return OSError(errno.ENOENT, os.strerror(errno.ENOENT))
        return None

    _inject(monkeypatch, delete_then_write)
    with pytest.raises(runlib.RunWriteError) as info:
        runlib.train_run(run_dir, TINY, SETTINGS)
    assert "was deleted while the run wrote to it" in str(info.value)
    assert "--resume" not in str(info.value)


def test_eval_episodes_beyond_memory_is_refused_before_compiling(reference, monkeypatch, capsys):
    from jaxpg import sharding

    monkeypatch.setattr(sharding, "device_memory_budget", lambda mesh, f: (2**30, "host"))
    assert main(["eval", str(reference), "--episodes", str(10**8)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--episodes 100000000 needs about" in err[0]
    assert err[0].endswith("use fewer --episodes")
