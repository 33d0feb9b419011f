"""One process per run directory: an exclusive lock held for the whole run.

``RunLock(directory)`` creates ``directory/.jaxpg.lock``, takes an exclusive
``flock`` on it and writes the owner's PID, host and start time into it. A second
process (a concurrent ``--resume``, a sweep into the same ``--out``) finds the
``flock`` taken and fails with one line naming the owner's PID. The lock file is
removed when the run ends on any path (return, exception, Ctrl-C). A process
killed with SIGKILL cannot remove it, but the kernel drops its ``flock``, so the
next run finds the file unlocked, reads the dead PID from it and takes over,
saying so. On filesystems without ``flock`` (some network mounts) the PID alone
decides: a lock whose PID is not running on this host is stale.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

LOCK_NAME = ".jaxpg.lock"


class LockedError(RuntimeError):
    """The run directory is in use by another live process."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """Exclusive lock on a run directory, as a context manager.

    Args:
      directory: the run directory (must exist).
      what: what the lock protects, for messages (``"run"``, ``"sweep"``).
      quiet: no note on stderr when a stale lock is taken over.

    Raises:
      LockedError: another live process holds the lock (on ``__enter__``).
    """

    def __init__(self, directory: str | os.PathLike, what: str = "run", quiet: bool = False):
        self.path = Path(directory) / LOCK_NAME
        self.what = what
        self.quiet = quiet
        self._fd: int | None = None
        self.stale_owner: dict | None = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> bool:
        self.release()
        return False

    def acquire(self) -> None:
        """Take the lock or raise :class:`LockedError` naming the owner."""
        for _ in range(10):  # retried only when the file is replaced under us
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:  # a read-only directory, a directory in the lock's place
                from jaxpg.files import describe

                raise LockedError(
                    f"{self.path.parent}: cannot take the lock {self.path.name}: "
                    f"{describe(exc)}; the {self.what} directory must be writable and "
                    f"{self.path.name} a file"
                ) from None
            try:
                flocked = self._flock(fd)
                owner = _read_owner(fd)
                if not flocked and owner and _live_here(owner):
                    raise LockedError(self._busy(owner))
                if _identity(os.fstat(fd)) != _path_identity(self.path):
                    os.close(fd)  # released and removed meanwhile: take the new file
                    continue
            except BaseException:
                if fd is not None:
                    _close_quietly(fd)
                raise
            if owner and owner.get("pid") != os.getpid():
                self.stale_owner = owner
                if not self.quiet:
                    print(
                        f"jaxpg: note: {self.path.parent}: took over a stale lock of PID "
                        f"{owner.get('pid')} (no longer running)",
                        file=sys.stderr,
                    )
            record = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "argv": sys.argv,
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
            self._fd = fd
            return
        raise LockedError(f"{self.path.parent}: could not take {self.path.name}; try again")

    def _flock(self, fd: int) -> bool:
        """True if the flock was taken; False where flock is unsupported; raise if busy."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockedError(self._busy(_read_owner(fd))) from None
            return False  # ENOLCK and friends: the PID decides

    def _busy(self, owner: dict | None) -> str:
        who = (
            f"PID {owner.get('pid')} on {owner.get('host')} (started {owner.get('started')})"
            if owner
            else "another process"
        )
        return (
            f"{self.path.parent} is in use by {who}; wait for it to finish or stop it "
            f"(one process per {self.what} directory)"
        )

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if _identity(os.fstat(fd)) == _path_identity(self.path):
                self.path.unlink()
        except OSError:
            pass
        _close_quietly(fd)  # closing drops the flock


def _read_owner(fd: int) -> dict | None:
    try:
        text = os.pread(fd, 4096, 0).decode()
        owner = json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else None


def _live_here(owner: dict) -> bool:
    """Whether the owner may still run: alive on this host, or on another host (unknown)."""
    if owner.get("host") != socket.gethostname():
        return True
    return owner["pid"] != os.getpid() and _pid_alive(owner["pid"])


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _path_identity(path: Path) -> tuple[int, int] | None:
    try:
        return _identity(os.stat(path))
    except FileNotFoundError:
        return None


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
