"""The host loop of a training run: dispatch compiled chunks, stream rows, checkpoint.

One job: drive :func:`jaxpg.loop.make_dispatch`'s program from the host. JAX
dispatches the next chunk before the host reads the previous chunk's metric rows,
so the host work overlaps the compute; checkpoints are written on a writer thread
while the next chunk runs; SIGINT and SIGTERM stop at the next chunk boundary
(:class:`StopFlag`). :func:`jaxpg.run.train_run` sets the loop up and writes the
run's records.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import jax
import numpy as np

from jaxpg import checkpoint, sharding
from jaxpg.config import HParams
from jaxpg.loop import make_dispatch
from jaxpg.progress import STREAMED
from jaxpg.rundir import CKPT_DIR, NonFiniteError
from jaxpg.runspec import TrainState

# The columns the compiled dispatch emits per update (the host adds the wall time
# and steps/s columns of metrics.csv).
DISPATCH_COLUMNS = ("update", "env_steps", *STREAMED)


class StopFlag:
    """First SIGINT or SIGTERM: finish the chunk, checkpoint, stop. A second one: abort now.

    SIGTERM is what ``kill``, Slurm, Kubernetes and CI timeouts send before
    SIGKILL: it is handled like Ctrl-C, so the run stops at the next chunk
    boundary with a checkpoint, ``summary.json`` says ``interrupted`` (with the
    ``signal``) and the lock is released; ``jaxpg train`` then exits with
    128 + the signal's number (130 for SIGINT, 143 for SIGTERM).

    Disabled multi-host, where processes could stop after different chunks and
    wait on each other for ever: there Ctrl-C aborts and ``--resume`` continues
    from the last checkpoint.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, enabled: bool = True) -> None:
        self.requested = False
        self.signal: int | None = None
        self.enabled = enabled
        self._old: dict = {}

    def __enter__(self):
        if self.enabled and _in_main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.signal = signum
        again = "Ctrl-C" if signum == signal.SIGINT else "signal again"
        print(
            f"\njaxpg: {signal.Signals(signum).name}: saving a checkpoint after this chunk "
            f"({again} to abort)",
            file=sys.stderr,
            flush=True,
        )

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}
        return False


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class NullSink:
    """The metrics sink of processes other than 0 in a multi-host run: drops everything."""

    def __call__(self, rows, count) -> None:
        pass

    def write_rows(self, rows) -> None:
        pass

    def flush(self, sync: bool = True, final: bool = False) -> None:
        pass

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass

    def elapsed(self) -> float:
        return 0.0


def chunk_program(runspec, settings, sink, shardings) -> tuple[int, Any]:
    """``(updates per dispatch, the jitted dispatch)`` of a run's host loop.

    ``chunks`` mode: ``log_every`` updates (at most ``checkpoint_every``) whose rows
    the host reads; ``callback`` mode: ``checkpoint_every`` updates whose rows reach
    ``sink`` from inside the program every ``log_every`` updates.
    """
    n = runspec.num_updates
    if settings.log_mode == "callback":
        length = max(1, min(settings.checkpoint_every, n))
        return length, make_dispatch(
            runspec, length, DISPATCH_COLUMNS, sink=sink,
            log_every=settings.log_every, shardings=shardings,
        )  # fmt: skip
    length = max(1, min(settings.log_every, settings.checkpoint_every, n))
    return length, make_dispatch(runspec, length, DISPATCH_COLUMNS, shardings=shardings)


def compile_in_background(fn, *args) -> threading.Thread:
    """Compile the jitted ``fn`` for ``args`` (arrays or shapes) on a daemon thread.

    Its first call with arguments of those shapes then finds the executable in
    jit's cache. A failure is left for that call to raise.
    """

    def work():
        try:
            fn.lower(*args).compile()
        except Exception:  # noqa: BLE001  (the real call compiles again and raises)
            pass

    thread = threading.Thread(target=work, name="jaxpg-compile", daemon=True)
    thread.start()
    return thread


class HostLoop:
    """The host loop: dispatch compiled chunks, stream their rows, checkpoint.

    In ``chunks`` mode each dispatch runs ``log_every`` updates and returns their
    metric rows; the next chunk is dispatched before the previous one's rows are
    read (JAX's asynchronous dispatch), so the device never waits for the host.
    In ``callback`` mode each dispatch runs ``checkpoint_every`` updates and the
    rows reach the sink by ``jax.debug.callback`` from inside the program.
    """

    def __init__(
        self, runspec, config, settings, run_dir, sink, ckpt_step, shardings=None, program=None
    ):  # fmt: skip
        self.runspec, self.config, self.settings = runspec, config, settings
        self.run_dir, self.sink, self.ckpt_step = run_dir, sink, ckpt_step
        self.stopped_early = False
        # (updates, env steps) the computation has reached, from the rows the device
        # returned (not from metrics.csv); the final state's once the loop returns.
        self.done = (int(ckpt_step or 0), 0.0)  # set from the state in run()
        self._future = None
        self.chunk_len, self.chunk = program or chunk_program(runspec, settings, sink, shardings)

    def _drain(self, pending: list) -> None:
        """Read the rows of dispatched chunks (blocking) and hand them to the sink."""
        while pending:
            bad, rows = pending.pop(0)
            bad = int(bad)
            if self.settings.log_mode == "callback":
                jax.effects_barrier()
                if getattr(self.sink, "last_update", 0):
                    self.done = (self.sink.last_update, self.sink.steps)
            else:
                rows = np.asarray(rows)
                rows = rows[rows[:, 0] > 0]
                self.sink.write_rows(rows)
                if len(rows):
                    self.done = (int(rows[-1, 0]), float(rows[-1, 1]))
            if bad:
                self.sink.flush(sync=True)
                self._wait_for_checkpoint()
                raise NonFiniteError(bad, self.ckpt_step, self.run_dir)

    def _save(self, state: TrainState, step: int, wall: float) -> None:
        """Runs on the writer thread: make the rows durable, then the checkpoint."""
        self.sink.sync()  # every row up to ``step`` was written before this job started
        checkpoint.save(
            self.run_dir / CKPT_DIR,
            state,
            self.config,
            {"wall_time_s": wall, "env_steps": float(state.env_steps)},
            keep=self.settings.keep_checkpoints,
        )
        self.ckpt_step = step

    def _wait_for_checkpoint(self) -> None:
        if self._future is not None:
            future, self._future = self._future, None
            future.result()  # re-raises a failed write

    def run(self, state: TrainState, hp: HParams, stop) -> TrainState:
        """Run updates until the end (or a requested stop); checkpoints behind the compute.

        A checkpoint is written on a writer thread while the next chunk runs, at
        most one at a time and always after the metric rows it covers.
        """
        from concurrent.futures import ThreadPoolExecutor

        n = self.runspec.num_updates
        every = self.settings.checkpoint_every
        step = int(state.update_step)
        self.done = (step, float(state.env_steps))
        last_ckpt = step
        pending: list = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxpg-ckpt") as writer:
            try:
                while step < n:
                    state, bad, rows = self.chunk(state, hp)  # asynchronous dispatch
                    pending.append((bad, rows))
                    step = min(n, step + self.chunk_len)
                    if len(pending) > 1:  # read the previous chunk while this one runs
                        self._drain(pending[:-1])
                        del pending[:-1]
                    if step // every > last_ckpt // every or step == n or stop.requested:
                        self._drain(pending)  # all rows up to ``step`` are in the sink
                        self.sink.flush(sync=False)
                        self._wait_for_checkpoint()
                        saved = _host_state(state)
                        if jax.process_index() == 0:
                            self._future = writer.submit(
                                self._save, saved, step, self.sink.elapsed()
                            )
                        last_ckpt = step
                        if stop.requested and step < n:
                            self.stopped_early = True
                            break
            finally:
                self._wait_for_checkpoint()
        return state


def _host_state(state: TrainState) -> TrainState:
    """The state as the checkpoint writer may read it.

    One host: the state itself (the writer thread copies it, sharded or not).
    Multi-host: gathered to NumPy on every process now (a collective), the PRNG
    key as its ``key_data``, which :func:`checkpoint.save` stores as it is.
    """
    if jax.process_count() == 1:
        return state
    return sharding.fetch(state.replace(key=jax.random.key_data(state.key)))
