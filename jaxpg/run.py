"""A training run on disk: compiled chunks of updates, streamed metrics, checkpoints.

Layout of a run directory::

    config.json          resolved Config, versions, devices, run settings
    metrics.csv          one row per update (see ``jaxpg.progress.COLUMNS``)
    checkpoints/         ckpt_<update>.msgpack, the newest few, written atomically
    learning_curve.png   episode return (and losses) against env steps
    summary.json         final status, return, steps, wall time
    tensorboard/         event files (with ``--tensorboard``)
    wandb/               the W&B run's local files (with ``--wandb``; jaxpg.wandb_log)

The run is a sequence of dispatches of one compiled program, a ``lax.scan``
over ``log_every`` updates (:func:`jaxpg.loop.make_dispatch`). JAX dispatches the next chunk
before the host reads the previous chunk's metric rows, so the host work
(``metrics.csv``, the progress bar, TensorBoard; see
:class:`~jaxpg.progress.MetricsSink`) overlaps the compute, and checkpoints
are written on a writer thread while the next chunk runs. Updates past the end
of the run are skipped with ``lax.cond``, so every chunk is the same program
and a resumed run executes exactly the computation of an uninterrupted one,
reaching bitwise-identical parameters. ``log_mode="callback"`` instead sends
the rows out from inside longer chunks with ``jax.debug.callback``.

Non-finite values: each update checks its loss and the new parameters; the
first non-finite update is not applied, the scan skips everything after it,
and :func:`train_run` raises :class:`NonFiniteError` naming the update while
the last good checkpoint stays on disk.

Faults: a write that fails (full disk, I/O error, ``metrics.csv`` deleted while
the run has it open) stops the run with :class:`RunWriteError` naming the file;
every checkpoint and metric row already durable stays, and ``summary.json``
says ``failed`` with the real last checkpoint. ``summary.json`` is written at
the start with ``status: running`` and padded, so that the final record can
overwrite it in place when a full disk refuses a new file. Checkpoints carry a
checksum; a resume uses the newest one that verifies and says which.

Devices: with ``RunSettings.devices > 1`` (or on a multi-host cluster) the
state's env batch is split over the devices (:mod:`jaxpg.sharding`) and every
chunk is compiled for that layout; results equal the one-device run's up to
the order of floating-point sums. Multi-host, every process runs this loop
(each chunk is one program over all hosts' devices) and only process 0 writes
the run directory; checkpoints are gathered to the host on every process.
A resumed multi-host run needs the run directory on a filesystem all hosts
see.
"""

from __future__ import annotations

import dataclasses
import datetime
import platform
import signal
import sys
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxpg import checkpoint, compiling, files, rundir, sharding, stats
from jaxpg.config import Config
from jaxpg.files import write_json_atomic
from jaxpg.hostloop import (  # noqa: F401 - DISPATCH_COLUMNS re-exported
    DISPATCH_COLUMNS,
    HostLoop,
    NullSink,
    StopFlag,
    chunk_program,
    compile_in_background,
)
from jaxpg.progress import MetricsSink, repair_metrics
from jaxpg.rundir import (  # noqa: F401 - the errors and file names, re-exported
    CKPT_DIR,
    CURVE_PNG,
    METRICS_CSV,
    SUMMARY_JSON,
    NonFiniteError,
    NoValidCheckpointError,
    RunError,
    RunFailed,
    RunWriteError,
)
from jaxpg.runspec import TrainState, init_state, make_runspec

CONFIG_JSON = rundir.CONFIG_JSON


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """How a run is executed and logged (not part of the maths)."""

    checkpoint_every: int = 100  # updates between checkpoints (at chunk boundaries)
    log_every: int = 50  # updates per dispatched chunk (or per in-program callback)
    log_mode: str = "chunks"  # "chunks" (rows read between chunks) or "callback"
    keep_checkpoints: int = 3
    tensorboard: bool = False
    progress: bool = True
    devices: int = 1  # devices the env batch is split over (all of them multi-host)
    wandb: dict | None = None  # jaxpg.wandb_log.WandbOptions as a dict, with --wandb


def default_run_dir(config: Config, root: str = "runs") -> Path:
    """``runs/<env>-<estimator>-<UTC timestamp>``.

    Args:
      config: the run's configuration (``/`` in a suite id becomes ``_``).
      root: the directory the run directory goes under.

    Returns:
      The path (nothing is created).
    """
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    env = config.env.replace("/", "_")  # "suite/name" ids: one directory, not two
    return Path(root) / f"{env}-{config.estimator}-{stamp}"


def environment_info() -> dict:
    """Versions and devices, for ``config.json``."""
    import flax
    import gymnax
    import optax

    import jaxpg

    return {
        "jaxpg": jaxpg.__version__,
        "jax": jax.__version__,
        "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__") else None,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "gymnax": getattr(gymnax, "__version__", None),
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }


def prepare_run_dir(
    run_dir: Path,
    config: Config,
    settings: RunSettings,
    num_updates: int,
    argv: list[str] | None = None,
) -> None:
    """Create a fresh run directory and write ``config.json`` (errors before any write).

    Args:
      run_dir: the directory; must be missing or empty (:func:`check_fresh_run_dir`).
      config: the run's resolved configuration.
      settings: how the run is executed and logged.
      num_updates: updates in the run, recorded in ``config.json``.
      argv: the command line to record; ``None`` records ``sys.argv``.

    Raises:
      RunError: ``run_dir`` is not fresh or not writable.
      WriteFailed: ``config.json`` could not be written.
    """
    check_fresh_run_dir(run_dir)
    try:
        files.check_writable_dir(run_dir, "--out")
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise RunError(f"--out {run_dir} is not writable: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise RunError(str(exc)) from None
    write_json_atomic(
        run_dir / CONFIG_JSON,
        {
            **rundir.identity("train", config.to_dict()),
            "config": config.to_dict(),
            "num_updates": num_updates,
            "run": dataclasses.asdict(settings),
            "versions": environment_info(),
            "command": argv if argv is not None else sys.argv,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        },
    )


def check_fresh_run_dir(run_dir: Path) -> None:
    """Raise :class:`RunError` unless ``run_dir`` is missing or empty (a lock file aside).

    Args:
      run_dir: the ``--out`` directory of a new run.

    Raises:
      RunError: ``run_dir`` is a file, holds files, or cannot be read.
    """
    from jaxpg.lock import LOCK_NAME

    try:
        if run_dir.exists() and not run_dir.is_dir():
            raise RunError(f"--out {run_dir} exists and is not a directory")
        if run_dir.is_dir() and any(p.name != LOCK_NAME for p in run_dir.iterdir()):
            raise RunError(
                f"--out {run_dir} already exists and is not empty; pass a new --out, "
                f"or --resume {run_dir} to continue it"
            )
    except OSError as exc:
        raise RunError(f"--out {run_dir}: {files.describe(exc)}") from None


def load_run_config(run_dir: Path, flag: str = "--resume") -> tuple[Config, RunSettings]:
    """Read ``config.json`` of an existing train run directory.

    Args:
      run_dir: a directory made by :func:`prepare_run_dir`.
      flag: the option that named it, for messages.

    Returns:
      ``(config, settings)`` as the run was started.

    Raises:
      RunError: no ``config.json``; one of another kind (a sweep's,
        :func:`jaxpg.rundir.check_kind`); one edited since the run was made
        (:func:`jaxpg.rundir.check_config_unchanged`, naming the fields); or
        one that does not decode into a :class:`Config` and :class:`RunSettings`.
    """
    path = run_dir / CONFIG_JSON
    if not path.is_file():
        raise RunError(f"{run_dir} is not a jaxpg run directory (no {CONFIG_JSON})")
    record = rundir.check_kind(run_dir, "train", flag)
    rundir.check_config_unchanged(run_dir, record, _checkpoint_config(run_dir))
    try:
        config = Config.from_dict(record["config"])
        settings = RunSettings(**record.get("run", {}))
    except (ValueError, KeyError, TypeError) as exc:
        raise RunError(f"{path} is not a valid run config: {exc}") from None
    return config, settings


def _checkpoint_config(run_dir: Path) -> dict | None:
    """The config table of the newest readable checkpoint of ``run_dir``, or ``None``."""
    for _, path in reversed(checkpoint.list_checkpoints(run_dir / CKPT_DIR)):
        try:
            return checkpoint.read(path)[1].to_dict()
        except checkpoint.CheckpointError:
            continue
    return None


def newest_valid_checkpoint(
    directory: Path, load, *, relist=None, attempts: int = 3
) -> tuple[Any, Path, list[str]] | None:
    """The newest checkpoint ``load`` accepts: ``(load(path), path, damaged names)``.

    The one "newest valid checkpoint" loop: damaged checkpoints (checksum
    mismatch, truncated, undecodable) are skipped with a warning on stderr
    naming each; one that vanished while it was read (a live run pruning its
    oldest) is not damaged: the directory is listed again and the search
    restarts, at most ``attempts`` times. A checkpoint from an incompatible
    config is an error, not skipped.

    Args:
      directory: the checkpoint directory.
      load: ``path -> value``; raises :class:`jaxpg.checkpoint.CheckpointError`
        for a damaged file.
      relist: ``() -> [(step, path)]``; default ``list_checkpoints(directory)``.
      attempts: listings before a vanishing checkpoint counts as damaged.

    Returns:
      ``(value, path, damaged)`` or ``None`` when none loads.

    Raises:
      IncompatibleCheckpointError: a checkpoint from a config with other shapes.
    """
    relist = relist or (lambda: checkpoint.list_checkpoints(directory))
    damaged: list[str] = []
    for attempt in range(attempts):
        damaged = []
        vanished = False
        for _, path in reversed(relist()):
            try:
                return load(path), path, damaged
            except checkpoint.IncompatibleCheckpointError:
                raise
            except checkpoint.CheckpointError as exc:
                if not path.exists() and attempt + 1 < attempts:
                    vanished = True  # pruned by the live run meanwhile: list again
                    break
                print(f"jaxpg: warning: skipping damaged checkpoint: {exc}", file=sys.stderr)
                damaged.append(path.name)
        if not vanished:
            return None
    return None


def latest_good_checkpoint(run_dir: Path, template: TrainState, config: Config):
    """Newest checkpoint that verifies and restores; ``(state, meta, step)`` or ``None``.

    See :func:`newest_valid_checkpoint`.

    Args:
      run_dir: the run directory (checkpoints under ``run_dir/checkpoints``).
      template: a ``TrainState`` of the run's structure (values ignored).
      config: the run's configuration (:func:`jaxpg.checkpoint.check_compatible`).

    Returns:
      ``(state, meta, step)``: the restored state, its metadata dict and its
      update step; ``None`` when no checkpoint restores.

    Raises:
      IncompatibleCheckpointError: a checkpoint from a config with other shapes.
    """
    found = newest_valid_checkpoint(
        run_dir / CKPT_DIR, lambda path: checkpoint.restore(path, template, config)
    )
    if found is None:
        return None
    (state, meta), _, _ = found
    return state, meta, int(state.update_step)


def env_mesh_for(config: Config, settings: RunSettings):
    """The mesh the run's env batch is split over, or ``None`` for one device.

    Args:
      config: the run's configuration (``num_envs``).
      settings: ``devices`` and ``log_mode``.

    Returns:
      An :func:`jaxpg.sharding.env_mesh`, or ``None`` (one device, one process).

    Raises:
      RunError: ``settings.devices`` is more than there are, ``num_envs`` does
        not split evenly over them, or ``log_mode`` is ``"callback"`` (its
        ordered ``jax.debug.callback`` runs on one device only).
    """
    if settings.devices == 1 and jax.process_count() == 1:
        return None
    try:
        mesh = sharding.env_mesh(sharding.select_devices(settings.devices))
        sharding.check_env_split(config.num_envs, mesh.size)
    except ValueError as exc:
        raise RunError(str(exc)) from None
    if settings.log_mode == "callback":
        raise RunError(
            f"--log-mode callback runs on one device only (JAX orders host "
            f"callbacks on a single device); use --log-mode chunks with "
            f"{mesh.size} devices"
        )
    return mesh


def train_run(
    run_dir: Path,
    config: Config,
    settings: RunSettings,
    *,
    resume: bool = False,
    from_scratch: bool = False,
) -> dict:
    """Train ``config`` into ``run_dir`` (fresh, or continuing its latest checkpoint).

    Args:
      run_dir: the run directory; for a fresh run :func:`prepare_run_dir` must
        have been called.
      config: the resolved config.
      settings: chunking, logging and checkpoint settings.
      resume: continue from the newest valid checkpoint in ``run_dir`` (or
        from scratch if the run was killed before its first checkpoint).
      from_scratch: with ``resume``, start over from update 0 when checkpoints
        exist but none is valid (otherwise that is an error).

    Returns:
      The summary dict (also written to ``summary.json``); on processes other
      than 0 of a multi-host run, only ``status`` and ``process_index``.

    Raises:
      NonFiniteError: training produced NaN/inf (the last good checkpoint stays).
      RunWriteError: a write failed (full disk, I/O error, a vanished file).
      NoValidCheckpointError: ``resume`` found only damaged checkpoints.
      RunError: the devices cannot take the run (see :func:`env_mesh_for`).
    """
    mesh = env_mesh_for(config, settings)
    runspec = make_runspec(config)._replace(mesh=mesh)
    key = jax.random.key(config.seed)
    hp = config.hparams()
    state, program = _initial_state(runspec, settings, key, hp)
    shardings = None if mesh is None else sharding.state_shardings(state, mesh)
    writer = jax.process_index() == 0
    wall0, ckpt_step = 0.0, None
    if writer:
        for stray in (run_dir / CKPT_DIR).glob(".*.tmp"):  # left by a kill mid-write
            stray.unlink(missing_ok=True)
    if resume:
        state, ckpt_step, wall0 = _resume(run_dir, state, config, settings, from_scratch)
        if writer:
            _repair_metrics(run_dir, ckpt_step)
    steps_per_update = config.num_envs * runspec.horizon
    wandb_run = _wandb_run(run_dir, config, runspec, settings) if writer else None
    if writer:
        _write_summary(run_dir, {"status": "running", "run_dir": str(run_dir)})
        sink = _guard_write(
            run_dir,
            ckpt_step,
            MetricsSink,
            run_dir / METRICS_CSV,
            total_steps=runspec.num_updates * steps_per_update,
            start_wall=wall0,
            start_steps=float(state.env_steps),
            progress=settings.progress,
            tensorboard_dir=run_dir / "tensorboard" if settings.tensorboard else None,
            wandb_run=wandb_run,
        )
    else:
        sink = NullSink()
    if shardings is not None:
        state = sharding.put_state(state, shardings)
    status, error, stopped_by = "completed", None, None
    loop = HostLoop(runspec, config, settings, run_dir, sink, ckpt_step, shardings, program)
    try:
        with StopFlag(enabled=jax.process_count() == 1) as stop:
            state = loop.run(state, hp, stop)
        loop.done = (int(state.update_step), float(state.env_steps))
        if loop.stopped_early:
            status = "interrupted"
            stopped_by = stop.signal
    except BaseException as exc:  # recorded in summary.json, then re-raised
        error = exc
    try:
        sink.close()
    except files.WriteFailed as exc:
        error = error or exc
    if isinstance(error, files.WriteFailed):
        error = _write_error(error, run_dir, loop.ckpt_step)
    status = _status(error, status)
    if writer:
        summary = _summary(run_dir, config, runspec, loop.done, sink, status, loop.ckpt_step)
        if error is not None and not isinstance(error, KeyboardInterrupt):
            summary["error"] = str(error)
        if stopped_by is not None:
            summary["signal"] = signal.Signals(stopped_by).name
        _write_summary(run_dir, summary)
        if not isinstance(error, RunWriteError):  # a failing disk takes no plot
            _plot_quietly(run_dir)
        if wandb_run is not None:
            wandb_run.finish(summary)
    else:
        summary = {"status": status, "process_index": jax.process_index()}
    if error is not None:
        raise error
    return summary


def _initial_state(runspec, settings: RunSettings, key, hp) -> tuple[TrainState, Any]:
    """The fresh state, and the chunk program compiled meanwhile (``None`` if not).

    In one-device ``chunks`` mode the chunk program compiles on a second thread
    while the initialisation compiles and runs here (the first chunk then finds
    it in jit's cache).
    """
    init = _compiled_init(runspec)
    program = warm = None
    if runspec.mesh is None and settings.log_mode == "chunks":
        program = chunk_program(runspec, settings, None, None)
        warm = compile_in_background(program[1], jax.eval_shape(init, key), hp)
    try:
        return init(key), program
    finally:  # never leave a compiling thread behind (exiting under it aborts the process)
        if warm is not None:
            warm.join()


def _resume(run_dir: Path, state, config: Config, settings: RunSettings, from_scratch: bool):
    """``(state, checkpoint step or None, wall time so far)`` of a resumed run.

    Raises:
      NoValidCheckpointError: checkpoints exist, none is valid, and not ``from_scratch``.
    """
    found = latest_good_checkpoint(run_dir, state, config)
    on_disk = checkpoint.list_checkpoints(run_dir / CKPT_DIR)
    ckpt_step, wall0 = None, 0.0
    if found is not None:
        state, meta, ckpt_step = found
        wall0 = float(meta.get("wall_time_s", 0.0))
        note = f"resuming from update {ckpt_step} ({checkpoint.checkpoint_name(ckpt_step)})"
    elif on_disk and not from_scratch:
        raise NoValidCheckpointError(
            f"--resume {run_dir}: none of its {len(on_disk)} checkpoint(s) is valid "
            f"(see the warnings above); nothing was changed; to retrain from update 0 "
            f"add --from-scratch"
        )
    else:
        note = "no valid checkpoint: starting from update 0"
    if settings.progress:
        print(f"jaxpg: {note}", file=sys.stderr)
    return state, ckpt_step, wall0


def _repair_metrics(run_dir: Path, ckpt_step: int | None) -> None:
    """Cut ``metrics.csv`` back to the checkpoint, quarantining damaged rows (with a warning)."""
    fixed = _guard_write(run_dir, ckpt_step, repair_metrics, run_dir / METRICS_CSV, ckpt_step or 0)
    for bad in fixed.quarantined:
        print(
            f"jaxpg: warning: {run_dir / METRICS_CSV} line {bad.line} is damaged ({bad.reason}); "
            f"moved it to {fixed.quarantine_path}",
            file=sys.stderr,
        )
    missing = sorted(set(range(1, (ckpt_step or 0) + 1)) - set(fixed.updates))
    if missing:
        print(
            f"jaxpg: warning: {METRICS_CSV} has no good row for {len(missing)} of updates "
            f"1..{ckpt_step} ({_spans(missing)}); the run itself is intact (its progress is "
            f"the checkpoint's, update {ckpt_step})",
            file=sys.stderr,
        )


def _spans(numbers: list[int]) -> str:
    """``[1, 2, 3, 7]`` → ``"1-3, 7"``."""
    out, start = [], numbers[0]
    for a, b in zip(numbers, numbers[1:] + [None], strict=True):
        if b != a + 1:
            out.append(f"{start}-{a}" if a > start else f"{a}")
            start = b
    return ", ".join(out)


def _status(error: BaseException | None, status: str) -> str:
    if error is None:
        return status
    if isinstance(error, NonFiniteError):
        return "nonfinite"
    if isinstance(error, KeyboardInterrupt):
        return "aborted"
    return "failed"


def _write_error(exc: files.WriteFailed, run_dir: Path, ckpt_step: int | None) -> RunWriteError:
    if not (run_dir / CONFIG_JSON).is_file():  # the directory was deleted (or emptied)
        return RunWriteError(
            f"{exc}; stopped; the run directory {run_dir} (or its {CONFIG_JSON}) was deleted "
            f"while the run wrote to it, so there is nothing to resume; train again with a "
            f"fresh --out"
        )
    kept = (
        f"last checkpoint kept at update {ckpt_step}"
        if ckpt_step is not None
        else "no checkpoint was written"
    )
    return RunWriteError(
        f"{exc}; stopped; {kept} in {run_dir / CKPT_DIR}; once the disk is fixed continue "
        f"with: jaxpg train --resume {run_dir}"
    )


def _guard_write(run_dir: Path, ckpt_step: int | None, fn, *args, **kwargs):
    """Call ``fn``; a failed write becomes a :class:`RunWriteError`."""
    try:
        return fn(*args, **kwargs)
    except files.WriteFailed as exc:
        raise _write_error(exc, run_dir, ckpt_step) from None


def _write_summary(run_dir: Path, summary: dict) -> None:
    """Write ``summary.json`` (padded, see the module docstring); never raises."""
    import json

    path = run_dir / SUMMARY_JSON
    text = json.dumps(summary, indent=2, sort_keys=True) + "\n"
    data = text.encode() + b" " * max(0, _SUMMARY_PAD - len(text))
    try:
        files.write_bytes_atomic(path, data)
        return
    except files.WriteFailed as exc:
        first = exc
    try:
        if files.overwrite_in_place(path, text.encode()):
            return
    except files.WriteFailed:
        pass
    print(f"jaxpg: warning: {first}; {SUMMARY_JSON} is out of date", file=sys.stderr)


_SUMMARY_PAD = 4096  # bytes: room for the final summary to overwrite the first in place


def _compiled_init(runspec) -> Any:
    """``init_state`` for ``runspec`` as one compiled program (op by op it is dozens of
    small compilations: seconds of a command's start-up)."""
    return compiling.jit(lambda key: init_state(runspec, key))


def _wandb_run(run_dir: Path, config: Config, runspec, settings: RunSettings):
    """The W&B run of ``settings.wandb`` (``None`` without ``--wandb``)."""
    if settings.wandb is None:
        return None
    from jaxpg.wandb_log import WandbOptions, WandbRun

    return WandbRun(
        WandbOptions.from_dict(settings.wandb),
        name=run_dir.name,
        config={**config.to_dict(), "num_updates": runspec.num_updates},
        directory=run_dir,
    )


def _summary(run_dir, config, runspec, progress, sink, status, ckpt_step) -> dict:
    """The summary record; ``progress`` is ``(updates done, env steps)`` as the
    computation reached them (:attr:`HostLoop.done`), never a count of rows."""
    from jaxpg.progress import read_metrics

    try:
        m = read_metrics(run_dir / METRICS_CSV)
    except (OSError, ValueError):  # deleted or damaged: the summary must still be written
        m = {c: np.zeros((0,)) for c in ("update", "env_steps", "wall_time_s", "episode_return")}
    ret = m["episode_return"]
    final = stats.final_return(ret)  # the same definition as jaxpg sweep's
    done, steps = progress
    wall = float(m["wall_time_s"][-1]) if len(ret) else 0.0
    # Throughput between the first and last row: compile time excluded.
    span = float(m["wall_time_s"][-1] - m["wall_time_s"][0]) if len(ret) > 1 else 0.0
    rate = float(m["env_steps"][-1] - m["env_steps"][0]) / span if span > 0 else None
    return {
        "status": status,
        "run_dir": str(run_dir),
        "env": config.env,
        "estimator": config.estimator,
        "updates_done": done,
        "num_updates": runspec.num_updates,
        "env_steps": steps,
        "last_checkpoint_update": ckpt_step,
        "final_return": final if np.isfinite(final) else None,
        "final_return_window": stats.final_window(len(ret)),
        "best_return": float(np.nanmax(ret)) if np.isfinite(ret).any() else None,
        "wall_time_s": round(wall, 3),
        "steps_per_s": round(rate, 1) if rate is not None else None,
    }


def _plot_quietly(run_dir: Path) -> None:
    try:
        from jaxpg.plotting import plot_learning_curve

        plot_learning_curve(run_dir / METRICS_CSV, run_dir / CURVE_PNG)
    except Exception as exc:  # a plot must never hide the run's own outcome
        print(f"jaxpg: warning: could not plot the learning curve: {exc}", file=sys.stderr)


class LoadedPolicy(NamedTuple):
    """A trained policy as :func:`load_policy` restores it."""

    config: Config
    params: Any  # the whole model's (``networks.from_config(config, spec).policy`` takes them)
    step: int  # the checkpoint's update step
    obs_norm: Any  # TrainState.obs_norm: the frozen observation statistics, or None


def load_policy(path: Path, quiet: bool = False) -> LoadedPolicy:
    """Config, network params, update step and observation statistics of a run
    directory or checkpoint file.

    For a run directory, the newest checkpoint that verifies is used; when it is
    not the newest on disk, a note on stderr says which one was taken.

    Args:
      path: a run directory (checkpoints under ``checkpoints/`` or directly in
        it) or one checkpoint file.
      quiet: do not print the note about an older checkpoint being used.

    Returns:
      :class:`LoadedPolicy` with the whole model's ``params``.

    Raises:
      RunError: ``path`` holds no checkpoint or does not exist.
      NoValidCheckpointError: every checkpoint there is damaged (or the file given is).
      IncompatibleCheckpointError: a checkpoint does not fit its own config.
    """
    run_config = None
    if path.is_dir():
        sub = path / CKPT_DIR if checkpoint.list_checkpoints(path / CKPT_DIR) else path
        ckpts = checkpoint.list_checkpoints(sub)
        if not ckpts:
            raise RunError(f"{path} holds no checkpoint (expected {CKPT_DIR}/ckpt_*.msgpack)")
        if (path / CONFIG_JSON).is_file():
            run_config = load_run_config(path, "eval")[0]
    elif path.is_file():
        ckpts = [(None, path)]
    else:
        raise RunError(f"{path} does not exist (give a run directory or a checkpoint file)")

    def load(file: Path):
        _, config, _ = checkpoint.read(file)
        if run_config is not None:  # a checkpoint of another run copied in is refused
            _check_same_run(config, run_config, file, path)
        template = _compiled_init(make_runspec(config))(jax.random.key(config.seed))
        return checkpoint.restore(file, template, config)[0], config

    if len(ckpts) == 1 and not path.is_dir():
        try:
            (state, config), file, damaged = load(path), path, []
        except checkpoint.IncompatibleCheckpointError:
            raise
        except checkpoint.CheckpointError as exc:
            raise NoValidCheckpointError(str(exc)) from None
    else:
        found = newest_valid_checkpoint(sub, load)
        if found is None:
            names = [p.name for _, p in checkpoint.list_checkpoints(sub)]
            raise NoValidCheckpointError(
                f"{path}: no valid checkpoint ({len(names)} damaged: {', '.join(names)})"
            )
        (state, config), file, damaged = found
    if damaged and not quiet:
        print(
            f"jaxpg: note: using {file} (update {int(state.update_step)}), the newest "
            f"valid checkpoint",
            file=sys.stderr,
        )
    return LoadedPolicy(config, state.params, int(state.update_step), state.obs_norm)


def _check_same_run(saved: Config, run_config: Config, file: Path, run_dir: Path) -> None:
    """Refuse a checkpoint whose config is not its run directory's (another env, say)."""
    diffs = [
        f"{k}={v!r} (the run has {run_config.to_dict()[k]!r})"
        for k, v in saved.to_dict().items()
        if run_config.to_dict()[k] != v
    ]
    if diffs:
        raise checkpoint.IncompatibleCheckpointError(
            f"checkpoint {file} does not belong to the run in {run_dir}: {', '.join(diffs)}"
        )


def peek_config(path: Path) -> Config:
    """The config of a run directory or checkpoint file, without restoring any state.

    A run directory's ``config.json`` is preferred; otherwise its newest
    checkpoint is read.

    Args:
      path: a run directory or a checkpoint file.

    Returns:
      The run's :class:`Config`.

    Raises:
      RunError: ``path`` is neither a run directory nor a readable checkpoint.
    """
    if path.is_dir() and (path / CONFIG_JSON).is_file():
        return load_run_config(path, "eval")[0]
    if path.is_dir():
        ckpts = checkpoint.list_checkpoints(path / CKPT_DIR) or checkpoint.list_checkpoints(path)
        if not ckpts:
            raise RunError(f"{path} holds no checkpoint (expected {CKPT_DIR}/ckpt_*.msgpack)")
        path = ckpts[-1][1]
    elif not path.is_file():
        raise RunError(f"{path} does not exist (give a run directory or a checkpoint file)")
    try:
        return checkpoint.read(path)[1]
    except checkpoint.CheckpointError as exc:
        raise RunError(str(exc)) from None
