"""Host side of in-program logging: metrics rows, a progress bar, TensorBoard.

The compiled run buffers one metric row per update on device and calls
:meth:`MetricsSink.__call__` with a block of rows once per ``log_every``
updates through ``jax.debug.callback``. The sink formats the CSV lines and
appends them to a buffer; the buffer is written to ``metrics.csv`` (one
``write`` of whole lines, so a killed process never leaves half a row) and the
progress bar is redrawn at most every ``refresh_s`` seconds.

``metrics.csv`` holds one row per update. After a resume,
:func:`repair_metrics` cuts it back to the rows of the restored checkpoint,
so no row is duplicated, and moves a damaged row aside instead of dropping the
rows after it.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np

from jaxpg import files

# Columns of metrics.csv, in order. ``update`` is 1-based: the row of update n
# describes the state after n updates.
COLUMNS = (
    "update",
    "env_steps",
    "wall_time_s",
    "steps_per_s",
    "episode_return",
    "episode_length",
    "episodes",
    "loss",
    "policy_loss",
    "value_loss",
    "entropy",
    "approx_kl",
    "clip_frac",
    "grad_norm",
    "lr",
    "explained_variance",
)
# The metrics the compiled program sends to the host each update.
STREAMED = COLUMNS[4:]


QUARANTINE_CSV = "metrics.quarantine.csv"  # damaged rows moved aside by repair_metrics


class BadRow(NamedTuple):
    """A line of ``metrics.csv`` that failed verification."""

    line: int  # 1-based line number in the file (the header is line 1)
    text: str  # the line as read (undecodable bytes shown as U+FFFD)
    reason: str  # what is wrong with it


class MetricsRepair(NamedTuple):
    """What :func:`repair_metrics` did."""

    kept: int  # data rows kept (verified, update <= the checkpoint's)
    updates: list[int]  # their update numbers
    quarantined: list[BadRow]  # damaged rows, moved to ``QUARANTINE_CSV``
    quarantine_path: Path | None  # where they went (``None``: nothing was damaged)


def _check_row(text: str, previous: int) -> tuple[list[float], str | None]:
    """The cells of one data line and ``None``, or ``([], why it is damaged)``."""
    if "\ufffd" in text:
        return [], "it holds bytes that are not text"
    cells = text.rstrip("\n").split(",")
    if len(cells) != len(COLUMNS):
        return [], f"it has {len(cells)} cells, not {len(COLUMNS)}"
    values = []
    for name, cell in zip(COLUMNS, cells, strict=True):
        try:
            values.append(float(cell))
        except ValueError:
            return [], f"{name}={cell[:20]!r} is not a number"
    update = values[0]
    if not update.is_integer() or update < 1:
        return [], f"update={cells[0]!r} is not an update number"
    if update <= previous:
        return [], f"update {int(update)} does not follow update {previous}"
    return values, None


def _verified_lines(data: bytes) -> tuple[list[tuple[str, list[float]]], list[BadRow]]:
    """Split ``metrics.csv`` bytes into verified rows and damaged ones (the header aside).

    A row is kept only if it is a whole line (it ends in a newline) of
    ``len(COLUMNS)`` numbers whose ``update`` is an integer above the previous
    kept row's: one bad cell marks only its own row.
    """
    lines = data.split(b"\n")
    good: list[tuple[str, list[float]]] = []
    bad: list[BadRow] = []
    previous = 0
    for i, raw in enumerate(lines[1:], start=2):
        if i == len(lines) and not raw:
            break  # the empty piece after the last newline
        text = raw.decode("utf-8", errors="replace")
        if i == len(lines):
            bad.append(BadRow(i, text, "the line is not complete (no newline)"))
            break
        values, why = _check_row(text, previous)
        if why is not None:
            bad.append(BadRow(i, text, why))
            continue
        good.append((text + "\n", values))
        previous = int(values[0])
    return good, bad


def repair_metrics(path: str | os.PathLike, last_update: int) -> MetricsRepair:
    """Verify ``metrics.csv`` and keep the good rows with ``update <= last_update``.

    Rows past the checkpoint are dropped (the resumed run writes them again).
    Damaged rows (a garbled cell, a wrong cell count, bytes that are not text, an
    update out of order) are not a reason to drop anything else: each is moved,
    as it was, to ``metrics.quarantine.csv`` beside the file and the intact rows
    around it stay. The file is rewritten atomically; a missing one is created
    with the header only.

    Args:
      path: the run's ``metrics.csv``.
      last_update: the update step of the restored checkpoint.

    Returns:
      :class:`MetricsRepair`.

    Raises:
      jaxpg.files.WriteFailed: the file or the quarantine could not be written.
    """
    path = Path(path)
    header = ",".join(COLUMNS) + "\n"
    if not path.exists():
        files.write_bytes_atomic(path, header.encode())
        return MetricsRepair(0, [], [], None)
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = f"cannot read it to repair it: {files.describe(exc)}"
        raise files.WriteFailed(path, reason) from None
    good, bad = _verified_lines(data)
    first = data.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    if first + "\n" != header:
        bad.insert(0, BadRow(1, first, "the header is not jaxpg's"))
    kept = [(line, v) for line, v in good if v[0] <= last_update]
    where = None
    if bad:
        where = path.with_name(QUARANTINE_CSV)
        old = where.read_bytes() if where.exists() else b""
        lines = "".join(f"{path.name}:{b.line}: {b.text}\n" for b in bad)
        files.write_bytes_atomic(where, old + lines.encode())
    files.write_bytes_atomic(path, (header + "".join(line for line, _ in kept)).encode())
    return MetricsRepair(len(kept), [int(v[0]) for _, v in kept], bad, where)


def read_metrics(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read ``metrics.csv`` into float arrays keyed by :data:`COLUMNS`.

    Only verified rows are read (see :func:`repair_metrics`): a partial last
    line, a garbled cell or bytes that are not text skip that row alone.

    Args:
      path: a ``metrics.csv`` written by :class:`MetricsSink`.

    Returns:
      ``{column: [rows] float64}``; with no good data rows, empty arrays.

    Raises:
      OSError: the file cannot be read.
    """
    good, _ = _verified_lines(Path(path).read_bytes())
    if not good:
        return {c: np.zeros((0,)) for c in COLUMNS}
    rows = np.array([v for _, v in good], np.float64, ndmin=2)
    return {c: rows[:, i] for i, c in enumerate(COLUMNS)}


def _fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    m, s = divmod(int(seconds + 0.5), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressBar:
    """A one-line progress bar on a stream: env steps, steps/s, recent return, ETA.

    On a terminal the line is redrawn in place; otherwise a plain line is
    printed every ``plain_every_s`` seconds so logs stay readable.
    """

    def __init__(
        self, total_steps: float, stream: IO[str] | None = None, plain_every_s: float = 10.0
    ) -> None:
        self.total = float(total_steps)
        self.stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.plain_every_s = plain_every_s
        self._last_plain = -math.inf

    def line(self, steps: float, rate: float, ret: float, elapsed: float) -> str:
        """The bar's text: ``[####....] 40% steps/total | rate | return | elapsed ETA``.

        Args:
          steps: env steps done.
          rate: env steps per second (NaN: unknown).
          ret: the latest mean episode return (NaN: none yet).
          elapsed: wall seconds so far.

        Returns:
          One line without a newline.
        """
        frac = min(1.0, steps / self.total) if self.total else 1.0
        width = 20
        filled = int(frac * width)
        bar = "#" * filled + "." * (width - filled)
        eta = (self.total - steps) / rate if rate > 0 else math.inf
        rate_s = f"{rate:,.0f}" if math.isfinite(rate) else "?"
        ret_s = f"{ret:.1f}" if math.isfinite(ret) else "n/a"
        return (
            f"[{bar}] {frac:4.0%} {steps:,.0f}/{self.total:,.0f} steps | "
            f"{rate_s} steps/s | return {ret_s} | "
            f"elapsed {_fmt_time(elapsed)} ETA {_fmt_time(eta)}"
        )

    def draw(
        self, steps: float, rate: float, ret: float, elapsed: float, final: bool = False
    ) -> None:
        """Write the bar: in place on a terminal, else a plain line every ``plain_every_s``.

        Args:
          steps, rate, ret, elapsed: as in :meth:`line`.
          final: end the line (terminal) or print it regardless of the interval.
        """
        text = self.line(steps, rate, ret, elapsed)
        if self.tty:
            self.stream.write("\r" + text + ("\n" if final else ""))
        elif final or elapsed - self._last_plain >= self.plain_every_s:
            self._last_plain = elapsed
            self.stream.write(text + "\n")
        else:
            return
        self.stream.flush()


class MetricsSink:
    """Receives one update's metrics from inside the compiled run.

    Args:
      csv_path: ``metrics.csv`` (created with a header if missing).
      total_steps: env steps of the whole run (for the bar's ETA).
      start_wall: wall time already spent before this process (after a resume).
      start_steps: env steps already done before this process.
      progress: draw the progress bar on stderr.
      tensorboard_dir: write TensorBoard event files here (tensorboardX).
      refresh_s: minimum seconds between file writes / bar redraws.
      wandb_run: a :class:`jaxpg.wandb_log.WandbRun` that gets every row too
        (the caller finishes it).

    TensorBoard and W&B get only the finite values of a row: the episode return
    before any episode ended and the steps/s of the first rows are NaN in
    ``metrics.csv`` and absent there.
    """

    def __init__(
        self,
        csv_path: str | os.PathLike,
        total_steps: float,
        start_wall: float = 0.0,
        start_steps: float = 0.0,
        progress: bool = True,
        tensorboard_dir: str | os.PathLike | None = None,
        refresh_s: float = 0.25,
        wandb_run: Any = None,
    ) -> None:
        self.csv_path = Path(csv_path)
        if not self.csv_path.exists():
            repair_metrics(self.csv_path, 0)
        try:
            self._fd = os.open(self.csv_path, os.O_RDWR | os.O_APPEND)
        except OSError as exc:
            raise files.WriteFailed(self.csv_path, files.describe(exc)) from None
        self._ident = _identity(os.fstat(self._fd))
        self._lock = threading.Lock()  # flush (main thread) and sync (checkpoint writer)
        self._vanished: str | None = None
        self._buf: list[str] = []
        self.refresh_s = refresh_s
        self.bar = ProgressBar(total_steps) if progress else None
        self.t0 = time.perf_counter() - start_wall
        self._last_flush = time.perf_counter()
        self._rate_ref: tuple[float, float] | None = None
        self.rate = math.nan
        self._window_done = False
        self._last_arrival = 0.0
        self.steps = float(start_steps)
        self.ret = math.nan
        self.last_update = 0
        self.tb = _tensorboard_writer(tensorboard_dir) if tensorboard_dir else None
        self.wandb = wandb_run

    def __call__(self, rows: np.ndarray, count: int) -> None:
        """Host callback: the first ``count`` of ``rows`` from inside the compiled run.

        Args:
          rows: ``[log_every, 2 + len(STREAMED)]`` float32 buffer, columns
            ``[update, env_steps, *STREAMED]``.
          count: how many leading rows are filled.
        """
        self.write_rows(np.asarray(rows)[: int(count)])

    def write_rows(self, rows: np.ndarray) -> None:
        """Take a block of rows ``[update, env_steps, *STREAMED]``.

        Rows arrive in blocks; their wall times are spread evenly between the
        previous block's arrival and this one's. The lines are buffered and
        written by :meth:`flush` (called here at most every ``refresh_s``).

        Args:
          rows: ``[n, 2 + len(STREAMED)]`` float array.

        Raises:
          jaxpg.files.WriteFailed: as :meth:`flush`.
        """
        now = time.perf_counter()
        if not len(rows):
            return
        prev = self._last_arrival
        self._last_arrival = now
        if self._rate_ref is None:  # first block of this process: compile is behind us
            self._rate_ref = (now, float(rows[-1, 1]))
            prev = now
        dt = now - self._rate_ref[0]
        steps = float(rows[-1, 1])
        if dt > 0 and (dt >= 0.5 or not self._window_done):
            # Cumulative until the first 0.5 s window closes, then per window.
            self.rate = (steps - self._rate_ref[1]) / dt
            if dt >= 0.5:
                self._rate_ref, self._window_done = (now, steps), True
        n = len(rows)
        for j, r in enumerate(rows):
            wall = prev + (now - prev) * (j + 1) / n - self.t0
            line = [f"{int(r[0])}", f"{r[1]:.0f}", f"{wall:.4f}", f"{self.rate:.1f}"]
            line += [f"{v:.6g}" for v in r[2:]]
            self._buf.append(",".join(line) + "\n")
            if self.tb is not None or self.wandb is not None:
                self._log_row(r)
        self.steps, self.last_update = steps, int(rows[-1, 0])
        finite = rows[np.isfinite(rows[:, 2]), 2]
        if len(finite):
            self.ret = float(finite[-1])
        if now - self._last_flush >= self.refresh_s:
            self.flush(sync=False)

    def _log_row(self, r: np.ndarray) -> None:
        """One row to TensorBoard (at env step) and W&B (at update), finite values only."""
        values = {f"train/{k}": float(v) for k, v in zip(STREAMED, r[2:], strict=True)}
        values["train/steps_per_s"] = self.rate
        values = {k: v for k, v in values.items() if math.isfinite(v)}
        if self.tb is not None:
            for name, v in values.items():
                self.tb.add_scalar(name, v, int(r[1]))
        if self.wandb is not None:
            self.wandb.log({"env_steps": float(r[1]), **values}, step=int(r[0]))

    def flush(self, sync: bool = True, final: bool = False) -> None:
        """Write buffered rows (whole lines, one ``write``); ``sync`` also fsyncs.

        Args:
          sync: fsync ``metrics.csv`` (and flush TensorBoard) after writing.
          final: draw the progress bar's last line.

        Raises:
          jaxpg.files.WriteFailed: the write or fsync failed (the file is cut back
            to its last whole row), or ``metrics.csv`` was deleted or replaced
            while the run had it open (its rows are first restored under the
            name from the still-open file).
        """
        with self._lock:
            self._check_present()
            if self._buf:
                data = "".join(self._buf).encode()
                self._buf.clear()
                size = os.fstat(self._fd).st_size
                try:
                    files._write(self._fd, data, self.csv_path, "append")
                except OSError as exc:
                    _truncate_quietly(self._fd, size)  # no half row stays behind
                    raise files.WriteFailed(self.csv_path, files.describe(exc)) from None
            if sync:
                self._fsync()
        if sync and self.tb is not None:
            self.tb.flush()
        self._last_flush = time.perf_counter()
        if self.bar is not None:
            self.bar.draw(self.steps, self.rate, self.ret, self._last_flush - self.t0, final)

    def sync(self) -> None:
        """fsync the rows written so far (safe to call from another thread)."""
        with self._lock:
            self._check_present()
            self._fsync()

    def _fsync(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise files.WriteFailed(self.csv_path, files.describe(exc)) from None

    def _check_present(self) -> None:
        """Raise if ``metrics.csv`` is no longer the file this sink writes to.

        Rows written to a deleted file would vanish with it, so the first time
        the name is found missing the open file's rows (and any buffered ones)
        are written back under the name, then the run is stopped.
        """
        if self._vanished is None:
            try:
                same = _identity(os.stat(self.csv_path)) == self._ident
                missing = False
            except FileNotFoundError:
                same, missing = False, True
            except OSError as exc:
                raise files.WriteFailed(self.csv_path, files.describe(exc)) from None
            if same:
                return
            size = os.fstat(self._fd).st_size
            data = os.pread(self._fd, size, 0) + "".join(self._buf).encode()
            self._buf.clear()
            rows = max(0, data.count(b"\n") - 1)
            target = self.csv_path if missing else self.csv_path.with_suffix(".recovered.csv")
            try:
                files.write_bytes_atomic(target, data)
                kept = f"its {rows} row(s) were restored to {target} from the still-open file"
            except files.WriteFailed as exc:
                kept = f"restoring its {rows} row(s) failed too ({exc.reason})"
            what = "deleted" if missing else "replaced by another file"
            self._vanished = f"the file was {what} during the run; {kept}"
        raise files.WriteFailed(self.csv_path, self._vanished)

    def elapsed(self) -> float:
        """Wall seconds of the run so far, including time before a resume."""
        return time.perf_counter() - self.t0

    def close(self) -> None:
        """Write and fsync what is buffered and close the file (closed even if that fails)."""
        try:
            self.flush(sync=True, final=True)
        finally:
            os.close(self._fd)
            if self.tb is not None:
                self.tb.close()


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _truncate_quietly(fd: int, size: int) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError:
        pass


def _tensorboard_writer(logdir: str | os.PathLike) -> Any:
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise ValueError(
            "--tensorboard needs the tensorboardX package: pip install 'tensorboardX>=2.6,<3'"
        ) from None
    return SummaryWriter(str(logdir))
