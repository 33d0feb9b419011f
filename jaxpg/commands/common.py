"""Shared CLI pieces: ``Config`` options generated from the dataclass, JSON output.

Options are generated from ``jaxpg.Config``'s fields, so a new field is a new
option with no hand-copied list. Each option defaults to "not given" (``None``)
so that layers compose: defaults < ``--preset`` < ``--config FILE`` < options.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing


class CommandError(Exception):
    """A user error: printed as one line, exit code 2."""


def _field_help(name: str) -> str:
    from jaxpg.config import Config

    doc = Config.__doc__ or ""
    key = f"{name}:"
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(key):
            text = [line.strip()[len(key):].strip()]
            for nxt in lines[i + 1:]:
                s = nxt.strip()
                if not s or (":" in s.split()[0] and s.split()[0].endswith(":")):
                    break
                text.append(s)
            return " ".join(text)
    return ""


def _parse_sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 64,64, got {text!r}"
        ) from exc


def _parse_optional_bool(text: str) -> bool | None:
    low = text.lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    if low in ("none", "auto"):
        return None
    raise argparse.ArgumentTypeError(f"expected true, false or auto, got {text!r}")


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """Add one ``--field`` option per ``Config`` field, all defaulting to "not given"."""
    from jaxpg.config import ACTIVATIONS, ESTIMATORS, ROLLOUTS, Config

    group = parser.add_argument_group("run configuration (jaxpg.Config fields)")
    defaults = Config()
    hints = typing.get_type_hints(Config)
    choices = {"estimator": ESTIMATORS, "activation": ACTIVATIONS, "rollout": ROLLOUTS}
    for f in dataclasses.fields(Config):
        default = getattr(defaults, f.name)
        hint = hints[f.name]
        opt = "--" + f.name.replace("_", "-")
        help_text = f"{_field_help(f.name)} (default: {default})".replace("%", "%%")
        kw: dict = {"dest": f.name, "default": None, "help": help_text}
        if hint is bool:
            group.add_argument(opt, action=argparse.BooleanOptionalAction, **kw)
            continue
        if f.name == "hidden_sizes":
            kw.update(type=_parse_sizes, metavar="N,N")
        elif hint == bool | None:
            kw.update(type=_parse_optional_bool, metavar="{true,false,auto}")
        elif hint is int:
            kw.update(type=int, metavar="INT")
        elif hint is float:
            kw.update(type=float, metavar="FLOAT")
        else:
            kw.update(type=str)
            if f.name in choices:
                kw.update(choices=choices[f.name])
        group.add_argument(opt, **kw)


def config_overrides(args: argparse.Namespace) -> dict:
    """The ``Config`` fields given explicitly on the command line."""
    from jaxpg.config import Config

    out = {}
    for f in dataclasses.fields(Config):
        value = getattr(args, f.name, None)
        if value is not None:
            out[f.name] = value
    return out


def emit_json(obj) -> None:
    """Print one JSON document on stdout (the ``--json`` contract)."""
    json.dump(obj, sys.stdout, indent=2, sort_keys=True, default=_json_default)
    sys.stdout.write("\n")
    sys.stdout.flush()


def _json_default(x):
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
    except ImportError:  # pragma: no cover
        pass
    if hasattr(x, "tolist"):
        return x.tolist()
    if dataclasses.is_dataclass(x):
        return dataclasses.asdict(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def write_json_atomic(path, obj) -> None:
    """Write JSON to ``path`` atomically (temp file in the same dir, fsync, rename)."""
    import os
    import tempfile
    from pathlib import Path

    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=2, sort_keys=True, default=_json_default)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
