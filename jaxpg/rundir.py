"""What a directory on disk is: the one identity record every command checks.

Every directory a jaxpg command makes holds ``config.json`` with two keys that
say what it is:

- ``kind``: ``"train"`` (``jaxpg train``), ``"sweep"``, ``"eval"`` or
  ``"variance"``;
- ``config_sha256``: the SHA-256 of the ``config`` table as it was when the
  directory was made (:func:`config_hash`).

A command that opens a directory calls :func:`check_kind` first, so ``jaxpg
sweep --out RUN`` or ``jaxpg train --resume SWEEP`` is refused instead of
overwriting or nesting, and :func:`check_config_unchanged` before it continues
a run, so a ``config.json`` edited after the run was made is refused naming the
field that differs. Directories written before these keys existed are
recognised by their other keys (:func:`kind_of`).

This module reads and hashes JSON only: it imports nothing from JAX.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

CONFIG_JSON = "config.json"
KINDS = ("train", "sweep", "eval", "variance")
# What each kind is made by, for messages.
MADE_BY = {
    "train": "jaxpg train",
    "sweep": "jaxpg sweep",
    "eval": "jaxpg eval",
    "variance": "jaxpg variance",
}


# The files of a train run directory.
METRICS_CSV = "metrics.csv"
SUMMARY_JSON = "summary.json"
CURVE_PNG = "learning_curve.png"
CKPT_DIR = "checkpoints"


class RunError(ValueError):
    """A run that cannot start or continue (printed as one line by the CLI)."""


class RunFailed(RuntimeError):
    """A run that started and then failed (the CLI exits 1): NaN, a disk fault, damaged files."""


class RunWriteError(RunFailed):
    """A write failed during the run; the message names the file and what was kept."""


class NoValidCheckpointError(RunFailed):
    """Every checkpoint of a run is damaged (``--resume`` refuses to start over silently)."""


class NonFiniteError(RunFailed):
    """Training produced NaN/inf; ``update`` is the 1-based update where it happened."""

    def __init__(self, update: int, checkpoint_step: int | None, run_dir: Path) -> None:
        kept = (
            f"last good checkpoint kept at update {checkpoint_step}"
            if checkpoint_step is not None
            else "no checkpoint was written"
        )
        super().__init__(
            f"loss or parameters became NaN/inf at update {update}; stopped; {kept} "
            f"in {run_dir / CKPT_DIR}"
        )
        self.update = update
        self.checkpoint_step = checkpoint_step


def config_hash(config_dict: dict) -> str:
    """SHA-256 (hex) of a config table, independent of key order and whitespace.

    Args:
      config_dict: ``Config.to_dict()`` or the ``config`` table of a ``config.json``.

    Returns:
      64 hex digits.

    Example:
      >>> config_hash({"lr": 0.1, "gamma": 0.9}) == config_hash({"gamma": 0.9, "lr": 0.1})
      True
    """
    text = json.dumps(config_dict, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def identity(kind: str, config_dict: dict) -> dict:
    """The identity keys a new directory's ``config.json`` gets.

    Args:
      kind: one of :data:`KINDS`.
      config_dict: the config table written beside them.

    Returns:
      ``{"kind": kind, "config_sha256": config_hash(config_dict)}``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}; allowed: {', '.join(KINDS)}")
    return {"kind": kind, "config_sha256": config_hash(config_dict)}


def kind_of(record: dict) -> str | None:
    """The kind of a parsed ``config.json`` (older records by their keys), or ``None``."""
    kind = record.get("kind")
    if isinstance(kind, str) and kind in KINDS:
        return kind
    if "grid" in record and "seeds" in record:
        return "sweep"
    if "num_updates" in record and "run" in record:
        return "train"
    return None


def _kind_by_files(directory: Path) -> str | None:
    """A directory without ``config.json`` that still holds a train run's files."""
    try:
        if (directory / "checkpoints").is_dir() or (directory / "metrics.csv").is_file():
            return "train"
        if (directory / "chunks").is_dir():
            return "sweep"
    except OSError:
        return None
    return None


def read_record(directory: Path) -> dict | None:
    """The parsed ``config.json`` of ``directory``, ``None`` when there is none.

    Raises:
      RunError: ``config.json`` exists but cannot be read or is not a JSON table.
    """
    path = Path(directory) / CONFIG_JSON
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise RunError(f"{path} cannot be read as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RunError(f"{path} is not a jaxpg config record (expected a JSON table)")
    return data


def check_kind(directory: Path, expected: str, flag: str) -> dict | None:
    """Refuse ``directory`` if its ``config.json`` says it is of another kind.

    Args:
      directory: the directory a command is about to open.
      expected: the kind the command works on.
      flag: the option that named it (``--out``, ``--resume``, ...), for messages.

    Returns:
      The parsed record, or ``None`` when ``directory`` has no ``config.json``.

    Raises:
      RunError: the record is of another kind, naming both and what to do.
    """
    record = read_record(directory)
    if record is None:
        kind = _kind_by_files(Path(directory))
        if kind is None or kind == expected:
            return None
    else:
        kind = kind_of(record)
    if kind != expected:
        what = f"a {kind} directory (made by {MADE_BY[kind]})" if kind else "not a jaxpg directory"
        raise RunError(
            f"{flag} {directory} is {what}, not a {expected} directory; nothing was changed; "
            f"give {MADE_BY[expected]} a directory of its own"
        )
    return record


def check_config_unchanged(directory: Path, record: dict, original: dict | None) -> None:
    """Refuse a run whose ``config.json`` was edited after the run was made.

    Args:
      directory: the run directory.
      record: its parsed ``config.json``.
      original: the config the run was made with as another source holds it
        (the newest checkpoint's), used to name the fields that differ; ``None``
        when there is none.

    Raises:
      RunError: the ``config`` table no longer matches ``config_sha256``.
    """
    saved = record.get("config_sha256")
    config = record.get("config")
    if saved is None or not isinstance(config, dict) or config_hash(config) == saved:
        return
    path = Path(directory) / CONFIG_JSON
    if original is not None:
        diffs = [
            f"{k} (made with {original.get(k)!r}, the file now says {config.get(k)!r})"
            for k in sorted(set(original) | set(config))
            if _norm(original.get(k)) != _norm(config.get(k))
        ]
        if diffs:
            raise RunError(
                f"{path} was edited after the run was made: {'; '.join(diffs)}; restore it, "
                f"or start a new run with --config {path}"
            )
    raise RunError(
        f"{path} was edited after the run was made (its config no longer matches "
        f"config_sha256); restore it, or start a new run with --config {path}"
    )


def _norm(value):
    return list(value) if isinstance(value, tuple) else value
