"""Results of a finished sweep or search on disk: the long curves table, loading, figures.

Host-side only (NumPy, csv, matplotlib); nothing here traces or compiles.

* ``curves.csv`` is the long table of per-seed learning curves, one row per
  (point, seed, update): ``point, seed, update, env_steps, episode_return``.
  For a grid ``point`` indexes the grid points (``summary.csv``); for a search
  it is the population member or configuration (see ``search.json``).
  ``update`` is 1-based. A NaN return (no episode finished yet) is written as
  ``nan``.
* :func:`load` reads a sweep directory back as a :class:`LoadedSweep`.
* :func:`plot_curves` draws the interquartile mean over seeds per update with
  its 95% percentile-bootstrap band (per-seed thin lines on request) and writes
  the figure as vector PDF, SVG and a 300-dpi PNG, each atomically.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from jaxpg import files, stats
from jaxpg.config import Config

CURVE_COLUMNS = ("point", "seed", "update", "env_steps", "episode_return")
FIGURE_FORMATS = ("pdf", "svg", "png")
PNG_DPI = 300


class Curves(NamedTuple):
    """The long curves table as columns, each ``[N]`` (one entry per row of ``curves.csv``)."""

    point: np.ndarray  # int64
    seed: np.ndarray  # int64
    update: np.ndarray  # int64, 1-based
    env_steps: np.ndarray  # float64
    episode_return: np.ndarray  # float64, NaN before the first finished episode

    def of(self, point: int) -> tuple[np.ndarray, np.ndarray]:
        """``(env_steps [S, U], episode_return [S, U])`` of one point, seeds in file order.

        Args:
          point: the point's index.

        Returns:
          Two ``[S, U]`` arrays (every seed of a point has the same U).
        """
        rows = self.point == point
        seeds = list(dict.fromkeys(self.seed[rows].tolist()))
        steps = [self.env_steps[rows & (self.seed == s)] for s in seeds]
        rets = [self.episode_return[rows & (self.seed == s)] for s in seeds]
        return np.stack(steps), np.stack(rets)


class PointSummary(NamedTuple):
    """One row of ``summary.csv``: a point's values and the statistics of its final returns."""

    point: int
    values: dict  # {Config field: value} of this point
    n: int
    mean: float
    sem: float
    ci_low: float
    ci_high: float
    iqm: float
    iqm_ci_low: float
    iqm_ci_high: float
    median: float
    min: float
    max: float
    rank: int


class LoadedSweep(NamedTuple):
    """A sweep directory read back by :func:`load`."""

    directory: Path
    kind: str  # "grid", or the search method ("pbt", "halving")
    config: Config  # the base configuration
    seeds: list[int]
    points: list[PointSummary]
    curves: Curves
    search: dict | None  # search.json (method, space, lineage summary, best), None for a grid


def curve_rows(points: Sequence[int], seeds: Sequence[int], env_steps, episode_return) -> Curves:
    """The long table of ``R`` runs' curves: run ``r`` is ``(points[r], seeds[r])``.

    Args:
      points: ``[R]`` point (or member) index of each run.
      seeds: ``[R]`` seed of each run.
      env_steps: ``[R, U]`` env steps after each update.
      episode_return: ``[R, U]`` per-update mean episode return.

    Returns:
      :class:`Curves` with ``R × U`` rows, run-major, updates 1..U.

    Example:
      >>> c = curve_rows([0, 1], [7, 7], [[4.0, 8.0], [4.0, 8.0]], [[1.0, 2.0], [3.0, 4.0]])
      >>> c.point.tolist(), c.update.tolist(), c.episode_return.tolist()
      ([0, 0, 1, 1], [1, 2, 1, 2], [1.0, 2.0, 3.0, 4.0])
    """
    steps = np.asarray(env_steps, np.float64)
    ret = np.asarray(episode_return, np.float64)
    num_runs, num_updates = ret.shape
    if steps.shape != ret.shape or len(points) != num_runs or len(seeds) != num_runs:
        raise ValueError(
            f"curve_rows: shapes disagree: points {len(points)}, seeds {len(seeds)}, "
            f"env_steps {steps.shape}, episode_return {ret.shape}"
        )
    return Curves(
        np.repeat(np.asarray(points, np.int64), num_updates),
        np.repeat(np.asarray(seeds, np.int64), num_updates),
        np.tile(np.arange(1, num_updates + 1, dtype=np.int64), num_runs),
        steps.reshape(-1),
        ret.reshape(-1),
    )


def write_curves_csv(path: str | os.PathLike, curves: Curves) -> None:
    """Write ``curves.csv`` (columns :data:`CURVE_COLUMNS`) atomically."""
    fh = io.StringIO(newline="")
    w = csv.writer(fh)
    w.writerow(CURVE_COLUMNS)
    for p, s, u, e, r in zip(*curves, strict=True):
        w.writerow((int(p), int(s), int(u), repr(float(e)), repr(float(r))))
    files.write_bytes_atomic(path, fh.getvalue().encode())


def read_curves_csv(path: str | os.PathLike) -> Curves:
    """Read a ``curves.csv`` written by :func:`write_curves_csv`.

    Raises:
      ValueError: the header is not :data:`CURVE_COLUMNS`.
    """
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = tuple(next(reader, ()))
        if header != CURVE_COLUMNS:
            raise ValueError(f"{path}: header {header} is not {CURVE_COLUMNS}")
        rows = list(reader)
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(CURVE_COLUMNS)
    return Curves(
        *(np.asarray(c, np.int64) for c in (cols[0], cols[1], cols[2])),
        np.asarray(cols[3], np.float64),
        np.asarray(cols[4], np.float64),
    )


_STAT_FIELDS = PointSummary._fields[2:-1]


def _number(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _read_summary(path: Path) -> list[PointSummary]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for row in rows:
        values = {
            k: _number(v)
            for k, v in row.items()
            if k not in _STAT_FIELDS and k not in ("point", "rank")
        }
        stats_ = {k: float(row[k]) if row[k] != "" else math.nan for k in _STAT_FIELDS}
        stats_["n"] = int(stats_["n"])
        out.append(PointSummary(int(row["point"]), values, **stats_, rank=int(row["rank"])))
    return out


def summaries(points: Sequence[dict], finals: Sequence[Sequence[float]], seed: int = 0) -> list:
    """Statistics of each point's final returns, ranked (1 = best mean, ties by IQM).

    Args:
      points: ``[P]`` the points' values.
      finals: ``[P][n]`` final returns of each point's seeds.
      seed: bootstrap seed.

    Returns:
      ``[P]`` :class:`PointSummary`.
    """
    rows = [stats.summarize(f, seed=seed) for f in finals]
    ranks = stats.rank([r["mean"] for r in rows], [r["iqm"] for r in rows])
    return [
        PointSummary(j, dict(v), **r, rank=k)
        for j, (v, r, k) in enumerate(zip(points, rows, ranks, strict=True))
    ]


def load(directory: str | os.PathLike) -> LoadedSweep:
    """Read a finished ``jaxpg sweep`` directory (a grid or a ``--search``).

    Args:
      directory: the sweep's ``--out``.

    Returns:
      :class:`LoadedSweep`: the base ``Config``, the seeds, one
      :class:`PointSummary` per point (``summary.csv``), the per-seed curves
      (``curves.csv``) and, for a search, ``search.json``.

    Raises:
      FileNotFoundError: a file the directory should hold is missing.
    """
    d = Path(directory)
    record = json.loads((d / "config.json").read_text())
    search = None
    if (d / "search.json").is_file():
        search = json.loads((d / "search.json").read_text())
    return LoadedSweep(
        d,
        "grid" if search is None else search["method"],
        Config.from_dict(record["config"]),
        [int(s) for s in record.get("seeds", [])] if isinstance(record.get("seeds"), list) else [],
        _read_summary(d / "summary.csv"),
        read_curves_csv(d / "curves.csv"),
        search,
    )


# -- figures ------------------------------------------------------------------
def iqm_band(
    curves: np.ndarray, *, num_resamples: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per update: the IQM over seeds and its 95% percentile-bootstrap interval.

    Args:
      curves: ``[S, U]`` per-seed curves (NaN entries ignored).
      num_resamples: bootstrap resamples per update.
      seed: bootstrap seed.

    Returns:
      ``(iqm [U], low [U], high [U])``; NaN where no seed has a value.
    """
    curves = np.asarray(curves, np.float64)
    out = np.full((3, curves.shape[1]), np.nan)
    for u in range(curves.shape[1]):
        col = curves[:, u]
        if np.isfinite(col).any():
            out[0, u] = stats.interquartile_mean(col)
            out[1:, u] = stats.iqm_bootstrap_ci(col, num_resamples=num_resamples, seed=seed)
    return out[0], out[1], out[2]


def _thin(num_updates: int, most: int = 200) -> np.ndarray:
    if num_updates <= most:
        return np.arange(num_updates)
    return np.unique(np.linspace(0, num_updates - 1, most).round().astype(int))


def save_figure(fig, stem: str | os.PathLike, formats: Sequence[str] = FIGURE_FORMATS) -> list:
    """Write ``fig`` as ``stem.pdf``, ``stem.svg`` and ``stem.png`` (300 dpi), atomically.

    Returns:
      The paths written.
    """
    stem = Path(stem)
    written = []
    for fmt in formats:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=PNG_DPI if fmt == "png" else None, metadata=_meta(fmt))
        path = stem.with_suffix("." + fmt)
        files.write_bytes_atomic(path, buf.getvalue())
        written.append(path)
    return written


def _meta(fmt: str) -> dict | None:
    # No creation dates in vector files: the same results give the same bytes.
    if fmt == "pdf":
        return {"CreationDate": None}
    if fmt == "svg":
        return {"Date": None}
    return None


def plot_curves(
    curves: Curves,
    labels: Sequence[str],
    stem: str | os.PathLike,
    *,
    title: str = "",
    per_seed: bool = False,
    num_resamples: int = 1000,
    seed: int = 0,
) -> list:
    """IQM over seeds per update with its 95% bootstrap band, one line per point.

    Args:
      curves: the long table (:func:`curve_rows`).
      labels: ``[P]`` legend label of each point (point ``j`` is ``labels[j]``).
      stem: output path without suffix; ``stem.pdf``, ``.svg``, ``.png`` are written.
      title: the axes' title.
      per_seed: also draw every seed's curve as a thin line.
      num_resamples: bootstrap resamples per update.
      seed: bootstrap seed.

    Returns:
      The paths written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"font.size": 8, "axes.linewidth": 0.6, "svg.hashsalt": "jaxpg"}):
        fig, ax = plt.subplots(figsize=(6.0, 3.8))
        for j, label in enumerate(labels):
            if not (curves.point == j).any():
                continue
            steps, ret = curves.of(j)
            keep = _thin(ret.shape[1])
            x = np.mean(steps, axis=0)[keep]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mid, low, high = iqm_band(ret[:, keep], num_resamples=num_resamples, seed=seed)
            (line,) = ax.plot(x, mid, lw=1.4, label=label)
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.18, lw=0)
            if per_seed:
                for s in range(ret.shape[0]):
                    ax.plot(x, ret[s, keep], lw=0.4, alpha=0.45, color=line.get_color())
        ax.set_xlabel("env steps")
        ax.set_ylabel("episode return (IQM over seeds)")
        ax.set_title(title or "IQM over seeds, 95% bootstrap CI", fontsize=8)
        ax.grid(alpha=0.3, lw=0.4)
        if labels:
            ax.legend(fontsize=6, loc="best", frameon=False)
        fig.tight_layout()
        try:
            return save_figure(fig, stem)
        finally:
            plt.close(fig)
