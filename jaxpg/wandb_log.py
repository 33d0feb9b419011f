"""Weights & Biases logging for ``jaxpg train --wandb`` and ``jaxpg sweep --wandb``.

``wandb`` is an optional dependency (``pip install 'jaxpg[wandb]'``), imported
only when a run asks for it. Set ``WANDB_MODE=offline`` to write the run to
``<dir>/wandb/offline-run-*`` without a network (``wandb sync`` uploads it later).

What is logged:

* ``jaxpg train``: one W&B run per run directory, named after it. The config is
  the resolved :class:`~jaxpg.Config` plus ``num_updates``; every update is one
  history row at ``step = update`` with ``env_steps`` and ``train/<column>`` for
  the columns of ``metrics.csv``; ``summary.json`` becomes the run summary. A
  resumed run continues the same W&B run (its id is kept in ``config.json``);
  W&B drops rows whose step it has already seen.
* ``jaxpg sweep``: one W&B run per grid point (not per seed), all in one group
  (default: the sweep's output directory name). Its config is the point's
  config plus the seeds; each update is one row of the statistics over seeds
  (``episode_return/mean``, ``/iqm``, ``/ci_low``, ``/ci_high``, ``/n``) and
  the summary holds the point's row of ``summary.csv`` (final return mean, IQM
  with its bootstrap interval, ...). Per-seed curves stay in ``sweep.csv``.

Values that are not finite (an episode return before any episode ended, the
steps/s of the first rows) are left out of a row rather than sent as NaN.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

EXTRA_HINT = "pip install 'jaxpg[wandb]'"


@dataclasses.dataclass(frozen=True)
class WandbOptions:
    """Where a W&B run goes. ``None`` fields use W&B's defaults (e.g. ``WANDB_ENTITY``).

    Attributes:
      project: W&B project.
      entity: team or user; ``None`` for the logged-in default.
      group: run group (sweeps: default the output directory's name).
      tags: run tags.
      run_id: the W&B run id; kept so that a resumed run continues the same W&B run.
    """

    project: str = "jaxpg"
    entity: str | None = None
    group: str | None = None
    tags: tuple[str, ...] = ()
    run_id: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WandbOptions:
        """Inverse of ``dataclasses.asdict`` (JSON turns the tags into a list).

        Args:
          d: a mapping of the fields (e.g. ``RunSettings.wandb``).

        Returns:
          The :class:`WandbOptions`.
        """
        d = dict(d)
        d["tags"] = tuple(d.get("tags", ()))
        return cls(**d)


def require_wandb() -> Any:
    """Import ``wandb``, or raise a one-line ``ValueError`` naming the extra to install."""
    try:
        import wandb
    except ImportError:
        raise ValueError(f"--wandb needs the wandb package: {EXTRA_HINT}") from None
    return wandb


def new_run_id() -> str:
    """A fresh W&B run id (8 lowercase letters and digits, W&B's own format)."""
    import secrets
    import string

    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def finite_row(values: Mapping[str, float]) -> dict[str, float]:
    """``values`` without the entries that are NaN or infinite.

    Args:
      values: ``{metric: number}`` (anything ``float()`` accepts).

    Returns:
      A new dict of the finite entries, as Python floats.

    Example:
      >>> finite_row({"a": 1.0, "b": float("nan"), "c": float("inf")})
      {'a': 1.0}
    """
    return {k: float(v) for k, v in values.items() if math.isfinite(float(v))}


class WandbRun:
    """One W&B run: ``log`` rows, then ``finish`` with a summary.

    Args:
      options: project, entity, group, tags and run id.
      name: the run's display name.
      config: uploaded as the run config.
      directory: W&B writes its files under ``directory/wandb``.
      job_type: ``"train"`` or ``"sweep"``.
    """

    def __init__(
        self,
        options: WandbOptions,
        *,
        name: str,
        config: Mapping[str, Any],
        directory: str | os.PathLike,
        job_type: str = "train",
    ) -> None:
        wandb = require_wandb()
        Path(directory).mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(
            project=options.project,
            entity=options.entity,
            group=options.group,
            tags=list(options.tags),
            name=name,
            id=options.run_id,
            resume="allow" if options.run_id else None,
            job_type=job_type,
            config=dict(config),
            dir=str(directory),
            # Never wrap stdout: `--json` output must stay one JSON document.
            settings=wandb.Settings(console="off", quiet=True, x_disable_stats=True),
        )

    @property
    def dir(self) -> Path:
        """The run's local directory (``.../wandb/<offline-|>run-<time>-<id>``)."""
        return Path(self._run.dir).parent

    def log(self, row: Mapping[str, float], step: int) -> None:
        """Log one history row at ``step``, without its non-finite values.

        Args:
          row: ``{metric: number}``.
          step: the W&B step (the update number).
        """
        self._run.log(finite_row(row), step=int(step))

    def finish(self, summary: Mapping[str, Any] | None = None) -> None:
        """Write ``summary`` (non-finite numbers dropped) and close the run.

        Only finite ints and floats enter the summary; bools, strings and ``None``
        are skipped.

        Args:
          summary: ``{name: value}``, or ``None``.
        """
        for k, v in (summary or {}).items():
            if isinstance(v, bool | str) or v is None:
                continue
            if isinstance(v, int | float) and math.isfinite(v):
                self._run.summary[k] = v
        self._run.finish()


def log_sweep(
    options: WandbOptions,
    result: Any,
    directory: str | os.PathLike,
    *,
    seed: int = 0,
) -> list[str]:
    """Log a finished sweep: one W&B run per grid point (see the module docstring).

    Args:
      options: W&B destination; ``group`` defaults to the directory's name.
      result: the :class:`jaxpg.sweep.SweepResult`.
      directory: the sweep's output directory (W&B files go under it).
      seed: bootstrap seed of the per-update intervals.

    Returns:
      The local W&B run directories, one per grid point.
    """
    import numpy as np

    from jaxpg import stats

    group = options.group or Path(directory).resolve().name
    opts = dataclasses.replace(options, group=group, run_id=None)
    alpha = (1.0 - stats.CONFIDENCE) / 2.0
    dirs = []
    for point, row in zip(result.points, result.summary, strict=True):
        j = int(row["point"])
        curves = np.asarray(result.curves(j), np.float64)  # [S, U]
        steps = next(r.env_steps for r in result.runs if r.point == j)
        means = stats.bootstrap_means(curves, num_resamples=1000, seed=seed)  # [B, U]
        with np.errstate(all="ignore"):
            low, high = np.nanquantile(means, [alpha, 1.0 - alpha], axis=0)
        values = {k: (list(v) if isinstance(v, tuple) else v) for k, v in point.items()}
        config = {**result.config.to_dict(), **values, "seeds": list(result.seeds)}
        name = f"{group}/" + (",".join(f"{k}={v}" for k, v in values.items()) or "point0")
        run = WandbRun(opts, name=name, config=config, directory=directory, job_type="sweep")
        for u in range(curves.shape[1]):
            finite = curves[np.isfinite(curves[:, u]), u]
            run.log(
                {
                    "env_steps": float(steps[u]),
                    "episode_return/mean": float(finite.mean()) if finite.size else math.nan,
                    "episode_return/iqm": stats.interquartile_mean(finite),
                    "episode_return/ci_low": float(low[u]),
                    "episode_return/ci_high": float(high[u]),
                    "episode_return/n": float(finite.size),
                },
                step=u + 1,
            )
        run.finish({f"final_return/{k}": v for k, v in row.items() if _is_number(v)})
        dirs.append(str(run.dir))
    return dirs


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


__all__: Sequence[str] = [
    "EXTRA_HINT",
    "WandbOptions",
    "WandbRun",
    "finite_row",
    "log_sweep",
    "new_run_id",
    "require_wandb",
]
