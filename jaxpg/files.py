"""Durable, verified files: atomic writes, checksummed ("sealed") files, write failures.

Every file jaxpg writes goes through this module, so one place decides how a write
reaches the disk and what a failed one looks like:

- :func:`write_bytes_atomic`: a temp file in the same directory, ``fsync``,
  ``os.replace`` onto the name, ``fsync`` of the directory. A process killed at any
  moment leaves the old file or the new one, never a partial one.
- Sealed files (checkpoints, sweep chunks) end with a trailer holding the SHA-256
  of everything before it (:func:`seal`). :func:`read_sealed` verifies it on every
  read, so flipped bytes or a truncated file raise :class:`IntegrityError` instead
  of being decoded into wrong numbers.
- Any ``OSError`` while writing (``ENOSPC``, ``EIO``, a vanished file) becomes one
  :class:`WriteFailed` naming the file and the reason.

All bytes leave the process through :func:`_write`; tests replace it to inject
disk faults. This module imports nothing from jaxpg and no JAX: it sits below
every other layer.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

# Trailer of a sealed file: TAG + 64 hex digits of the SHA-256 of the payload + "\n".
TAG = b"\n#jaxpg-sha256:"
TRAILER_LEN = len(TAG) + 64 + 1


class IntegrityError(ValueError):
    """A sealed file whose checksum trailer is missing or does not match its bytes."""


class WriteFailed(RuntimeError):
    """A write that did not reach the disk; ``path`` names the file."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"cannot write {path}: {reason}")
        self.path = Path(path)
        self.reason = reason


def describe(exc: OSError) -> str:
    """``"No space left on device (ENOSPC)"`` for an ``OSError``.

    Args:
      exc: the error.

    Returns:
      Its ``strerror`` (or message) followed by the errno name in brackets when
      it has one.
    """
    name = errno.errorcode.get(exc.errno or 0)
    text = exc.strerror or str(exc)
    return f"{text} ({name})" if name else text


def _write(fd: int, data: bytes, path: Path, mode: str) -> None:
    """Write all of ``data`` to ``fd``; the one place bytes go to disk.

    Args:
      fd: an open file descriptor.
      data: the bytes.
      path: the file the bytes are for (the final name, not a temp file).
      mode: ``"atomic"`` (a new temp file), ``"append"`` or ``"inplace"``
        (overwriting bytes the file already holds). Fault-injection tests look
        at ``path`` and ``mode``.
    """
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename, dir fsync).

    Args:
      path: the destination; its directory must exist.
      data: the file's new content.

    Raises:
      WriteFailed: the write, fsync or rename failed; ``path`` is unchanged and
        no temp file is left.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o666 & ~_umask())
            _write(fd, data, path, "atomic")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as exc:
        raise WriteFailed(path, describe(exc)) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def json_default(obj: Any):
    """``json.dumps`` fallback for what a run records: NumPy/JAX scalars and arrays,
    dataclasses and paths.

    Args:
      obj: an object ``json`` cannot encode itself.

    Returns:
      ``obj.tolist()`` for anything that has it (a number or nested lists), a
      dict for a dataclass instance, a string for a path.

    Raises:
      TypeError: any other object.
    """
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically.

    NumPy scalars and arrays are written as numbers and lists (:func:`json_default`).

    Args:
      path: the destination; its directory must exist.
      obj: a JSON-serialisable object.

    Raises:
      WriteFailed: as :func:`write_bytes_atomic`.
    """
    text = json.dumps(obj, indent=2, sort_keys=True, default=json_default) + "\n"
    write_bytes_atomic(path, text.encode())


def overwrite_in_place(path: str | os.PathLike, data: bytes) -> bool:
    """Overwrite an existing file's bytes without allocating (a full disk's last resort).

    ``data`` is padded with spaces to the file's current size; when it is longer
    than the file nothing is written. Not atomic: meant for files written padded
    beforehand (``summary.json``) whose readers ignore trailing whitespace.

    Args:
      path: an existing file.
      data: the new content, at most the file's size.

    Returns:
      True if the file now holds ``data`` (padded); False if the file is missing
      or too short (nothing written).

    Raises:
      WriteFailed: the overwrite itself failed.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        return False
    if len(data) > size:
        return False
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            _write(fd, data + b" " * (size - len(data)), path, "inplace")
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise WriteFailed(path, describe(exc)) from None
    return True


def digest(data: bytes) -> str:
    """Hex SHA-256 of ``data``.

    Args:
      data: the bytes.

    Returns:
      64 lowercase hex digits.
    """
    return hashlib.sha256(data).hexdigest()


def seal(data: bytes) -> bytes:
    """``data`` followed by its checksum trailer (see :func:`unseal`).

    Args:
      data: the payload.

    Returns:
      ``data``, then ``TAG``, its hex digest and a newline (:data:`TRAILER_LEN` bytes).

    Example:
      >>> unseal(seal(b"abc"))
      b'abc'
    """
    return data + TAG + digest(data).encode() + b"\n"


def unseal(blob: bytes, path: str | os.PathLike = "<bytes>") -> bytes:
    """The payload of a sealed ``blob``, after checking its SHA-256.

    Args:
      blob: a sealed file's bytes (:func:`seal`).
      path: the file's name, for messages.

    Returns:
      The payload: ``blob`` without its trailer.

    Raises:
      IntegrityError: the trailer is missing (a truncated file, or one written
        without a checksum) or the digest does not match (damaged bytes).
    """
    if len(blob) < TRAILER_LEN or blob[-TRAILER_LEN : -TRAILER_LEN + len(TAG)] != TAG:
        raise IntegrityError(
            f"{path} has no checksum trailer ({len(blob)} bytes): truncated, or not "
            "written by this version of jaxpg"
        )
    data, want = blob[:-TRAILER_LEN], blob[-64 - 1 : -1].decode("ascii", "replace")
    got = digest(data)
    if got != want:
        raise IntegrityError(
            f"{path} is damaged: SHA-256 {got[:12]}… does not match the stored {want[:12]}…"
        )
    return data


def write_sealed(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` with its checksum trailer, atomically (see :func:`write_bytes_atomic`).

    Args:
      path: the destination; its directory must exist.
      data: the payload.

    Raises:
      WriteFailed: as :func:`write_bytes_atomic`.
    """
    write_bytes_atomic(path, seal(data))


def read_sealed(path: str | os.PathLike) -> bytes:
    """Read a sealed file and return its verified payload.

    Args:
      path: a file written by :func:`write_sealed`.

    Returns:
      The payload bytes.

    Raises:
      IntegrityError: damaged or truncated (see :func:`unseal`).
      OSError: the file cannot be read.
    """
    return unseal(Path(path).read_bytes(), path)


def check_writable_dir(path: str | os.PathLike, option: str) -> None:
    """Check that ``path`` can become a directory of ours, writing nothing.

    The name must be short enough for the filesystem, ``path`` must be a
    directory or not exist, and the nearest existing ancestor must be a
    writable directory.

    Args:
      path: the directory to be created or written into.
      option: how the user gave it (``"--out"``), for the message.

    Raises:
      ValueError: one line naming ``option``, the path and what is wrong.
    """
    path = Path(path)
    text = os.fsencode(path)
    if not text:
        raise ValueError(f"{option}: the path is empty")
    try:
        name_max = os.pathconf(_existing_ancestor(path), "PC_NAME_MAX")
        path_max = os.pathconf(_existing_ancestor(path), "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    long_part = next((p for p in path.parts if len(os.fsencode(p)) > name_max), None)
    if long_part is not None:
        raise ValueError(
            f"{option} {_short(path)}: a path component is {len(os.fsencode(long_part))} "
            f"bytes long; the filesystem allows {name_max}"
        )
    if len(os.fsencode(path.absolute())) >= path_max:
        raise ValueError(
            f"{option} {_short(path)}: the path is {len(os.fsencode(path.absolute()))} bytes "
            f"long; the filesystem allows {path_max - 1}"
        )
    try:
        if path.exists() and not path.is_dir():
            raise ValueError(f"{option} {path} exists and is not a directory")
        base = _existing_ancestor(path)
    except OSError as exc:
        raise ValueError(f"{option} {_short(path)}: {describe(exc)}") from None
    if not base.is_dir():
        raise ValueError(f"{option} {path}: {base} is not a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path} is not writable: {base} is read-only for this user")


def _existing_ancestor(path: Path) -> Path:
    p = path.absolute()
    while not p.exists():
        p = p.parent
    return p


def _short(path: Path, limit: int = 80) -> str:
    s = str(path)
    return s if len(s) <= limit else s[: limit // 2] + "…" + s[-limit // 2 :]
