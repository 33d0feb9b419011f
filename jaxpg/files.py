"""Atomic file writes: the one place the library writes a file that must never be torn.

Every writer goes through :func:`write_bytes_atomic`: the bytes go to a temporary
file in the same directory, are flushed and fsynced, and the temporary file is
renamed over the target (``os.replace`` is atomic on POSIX), then the directory
is fsynced so the rename itself is durable. A reader therefore sees either the
old file or the complete new one, also after a crash or SIGKILL mid-write. This
module imports nothing from jaxpg and no JAX: it sits below every other layer.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename, dir fsync).

    Args:
      path: the target file; its directory must exist.
      data: the complete new contents.

    Raises:
      OSError: the write failed (the target is then unchanged and no temporary
        file is left behind).

    Example:
      >>> import tempfile, pathlib
      >>> d = pathlib.Path(tempfile.mkdtemp())
      >>> write_bytes_atomic(d / "x.txt", b"hello")
      >>> (d / "x.txt").read_bytes()
      b'hello'
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def json_default(obj: Any):
    """``json.dumps`` fallback for what a run records: NumPy/JAX scalars and arrays,
    dataclasses and paths."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically.

    NumPy scalars and arrays are written as numbers and lists.
    """
    text = json.dumps(obj, indent=2, sort_keys=True, default=json_default) + "\n"
    write_bytes_atomic(path, text.encode())
