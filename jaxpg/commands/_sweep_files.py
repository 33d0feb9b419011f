"""Files of ``jaxpg sweep``: chunk checkpoints (resume), CSV tables and the curves plot.

Layout of an output directory::

  config.json          base config, grid, seeds, programs (chunking, memory, timings)
  sweep.csv            one row per run
  curves.csv           per-seed learning curves, one row per (point, seed, update)
  summary.csv          one row per grid point: statistics of the final return, rank
  curves.{pdf,svg,png} IQM over seeds ± 95% bootstrap CI per grid point (PNG at 300 dpi)
  chunks/              one .npz per finished chunk, written atomically with a SHA-256
                       trailer (resume); a damaged one is set aside as *.npz.damaged
                       and only its runs are trained again
  chunks/fingerprint.json  what the chunks belong to; a different sweep is refused
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np

from jaxpg import files
from jaxpg.commands.common import CommandError, write_json_atomic


def fingerprint(payload: dict) -> str:
    """A stable hash of what determines a sweep's runs (config, grid, seeds, version)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ChunkStore:
    """Finished chunks of a sweep under ``DIR/chunks``, saved atomically."""

    def __init__(self, out: Path, payload: dict, *, restart: bool, require: bool):
        self.dir = Path(out) / "chunks"
        self.key = fingerprint(payload)
        stamp = self.dir / "fingerprint.json"
        if restart and self.dir.exists():
            for f in [*self.dir.glob("*.npz"), *self.dir.glob("*.npz.damaged")]:
                f.unlink()
            if stamp.exists():
                stamp.unlink()
        if stamp.exists():
            try:
                found = json.loads(stamp.read_text()).get("fingerprint")
            except (OSError, ValueError, AttributeError) as exc:
                raise CommandError(
                    f"{stamp} is damaged ({exc}); the saved chunks cannot be matched to this "
                    "sweep: use --restart to discard them, or another --out"
                ) from None
            if found != self.key:
                raise CommandError(
                    f"{self.dir} holds chunks of a different sweep (fingerprint {found}, "
                    f"this one {self.key}); use another --out or --restart"
                )
        elif require:
            raise CommandError(f"--resume: no unfinished sweep found in {out}")
        self.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(stamp, {"fingerprint": self.key, "payload": payload})

    def load(self) -> dict[int, dict[int, tuple]]:
        """``{program: {run: (episode_return[U], env_steps[U])}}`` of saved chunks.

        A chunk whose checksum or contents do not verify is renamed to
        ``*.npz.damaged`` with a warning; its runs are missing from the result,
        so the sweep trains them again (and only them).
        """
        done: dict[int, dict[int, tuple]] = {}
        for f in sorted(self.dir.glob("prog*.npz")):
            try:
                chunk = _read_chunk(f)
            except (OSError, ValueError, KeyError) as exc:
                bad = f.with_name(f.name + ".damaged")
                os.replace(f, bad)
                print(
                    f"jaxpg sweep: warning: damaged chunk {f.name} ({exc}); set aside as "
                    f"{bad.name}, its runs will be trained again",
                    file=sys.stderr,
                )
                continue
            program, run_ids, ret, steps = chunk
            runs = done.setdefault(program, {})
            for i, r in enumerate(run_ids):
                runs[int(r)] = (ret[i], steps[i])
        return done

    def save(self, program: int, run_ids, episode_return, env_steps) -> None:
        """Write one chunk with its checksum (atomically: a crash leaves no half file)."""
        name = f"prog{program:03d}_runs{int(run_ids[0]):06d}-{int(run_ids[-1]):06d}.npz"
        buf = io.BytesIO()
        np.savez(
            buf,
            program=program,
            run_ids=np.asarray(run_ids),
            episode_return=episode_return,
            env_steps=env_steps,
        )
        files.write_sealed(self.dir / name, buf.getvalue())


def _read_chunk(path: Path) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """``(program, run_ids[n], episode_return[n, U], env_steps[n, U])`` of a verified chunk."""
    with np.load(io.BytesIO(files.read_sealed(path))) as z:
        program, run_ids = int(z["program"]), np.asarray(z["run_ids"])
        ret, steps = np.asarray(z["episode_return"]), np.asarray(z["env_steps"])
    if not (len(run_ids) == len(ret) == len(steps)) or ret.shape != steps.shape:
        raise ValueError(f"inconsistent shapes run_ids {run_ids.shape}, episode_return {ret.shape}")
    return program, run_ids, ret, steps


def _write_csv(path: Path, rows: list[dict]) -> None:
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    fh = io.StringIO(newline="")
    writer = csv.DictWriter(fh, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    files.write_bytes_atomic(path, fh.getvalue().encode())


def _cell(v):
    if isinstance(v, tuple):
        return "x".join(str(x) for x in v)
    if isinstance(v, float):
        return repr(v)
    return v


def run_rows(result) -> list[dict]:
    """One dict per run: point, grid values, seed, final return, area under curve, steps."""
    rows = []
    for i, r in enumerate(result.runs):
        with np.errstate(all="ignore"):
            auc = (
                float(np.nanmean(r.episode_return))
                if np.isfinite(r.episode_return).any()
                else float("nan")
            )
        rows.append(
            {
                "run": i,
                "point": r.point,
                **result.points[r.point],
                "seed": r.seed,
                "final_return": r.final_return,
                "mean_return": auc,
                "env_steps": float(r.env_steps[-1]),
                "updates": len(r.env_steps),
            }
        )
    return rows


def write_tables(out: Path, result) -> None:
    """``sweep.csv`` (one row per run), ``curves.csv`` (one row per run and update) and
    ``summary.csv`` (one row per grid point)."""
    from jaxpg import results

    _write_csv(out / "sweep.csv", run_rows(result))
    results.write_curves_csv(
        out / "curves.csv",
        results.curve_rows(
            [r.point for r in result.runs],
            [r.seed for r in result.runs],
            np.stack([r.env_steps for r in result.runs]),
            np.stack([r.episode_return for r in result.runs]),
        ),
    )
    _write_csv(out / "summary.csv", result.summary)


def _label(point: dict) -> str:
    return ", ".join(f"{k}={_cell(v)}" for k, v in point.items()) or "config"


def write_curves(
    path: Path, result, *, num_resamples: int = 1000, seed: int = 0, per_seed: bool = False
) -> list:
    """Plot each grid point's IQM learning curve with its 95% bootstrap band.

    ``path``'s stem gets ``.pdf``, ``.svg`` and a 300-dpi ``.png``
    (:func:`jaxpg.results.plot_curves`); the legend gives each point's rank.
    """
    from jaxpg import results

    ranks = {row["point"]: row["rank"] for row in result.summary}
    curves = results.curve_rows(
        [r.point for r in result.runs],
        [r.seed for r in result.runs],
        np.stack([r.env_steps for r in result.runs]),
        np.stack([r.episode_return for r in result.runs]),
    )
    labels = [f"#{ranks[j]} {_label(p)}" for j, p in enumerate(result.points)]
    title = (
        f"{result.config.env} {result.config.estimator}: {len(result.seeds)} seeds per point, "
        "IQM ± 95% bootstrap CI"
    )
    return results.plot_curves(
        curves,
        labels,
        Path(path).with_suffix(""),
        title=title,
        per_seed=per_seed,
        num_resamples=num_resamples,
        seed=seed,
    )
