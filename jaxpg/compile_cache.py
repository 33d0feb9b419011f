"""A persistent compilation cache: compiled programs reused across processes, verified.

The ``jaxpg`` command line turns it on by default (``--no-compile-cache`` turns it off),
so a second identical ``jaxpg train`` loads its programs instead of compiling them.
Library users turn it on with one call before they compile:

    import jaxpg.compile_cache
    jaxpg.compile_cache.enable()            # or enable("/some/dir")

Where it lives: ``$JAXPG_COMPILE_CACHE`` if set (an empty value turns the cache off),
else the platform's user cache directory (``$XDG_CACHE_HOME/jaxpg`` or
``~/.cache/jaxpg`` on Linux, ``~/Library/Caches/jaxpg`` on macOS,
``%LOCALAPPDATA%\\jaxpg`` on Windows). Inside it, one subdirectory per jax/jaxlib
version pair (``jax-0.10.2-jaxlib-0.10.2``), so a new jax never reads an old one's
entries; jax's own cache key hashes the program, the jaxlib version, the backend and
the XLA flags as well.

Safety. jax's file cache writes entries in place and trusts what it reads back: a
truncated or damaged file is decompressed and deserialized, which warns (a line on
stderr) or, if the damaged bytes still decompress, could hand XLA a broken executable.
jaxpg's cache (`SealedFileCache`) instead writes each entry atomically
(temporary file, then rename) with a SHA-256 digest of its bytes in front, and
`SealedFileCache.get` returns an entry only if the digest matches: a damaged
entry is counted in `STATS` (``"rejected"``), never given to jax, and jax
compiles the program again and writes a good entry over it. The digest only detects
damage; like jax's own cache this one is trusted (anyone who can write to its
directory can run code in your process), so keep it in your own user directory.

If jax's own ``jax_compilation_cache_dir`` is already set (``JAX_COMPILATION_CACHE_DIR``)
and neither ``JAXPG_COMPILE_CACHE`` nor a directory is given, jaxpg leaves that cache as
jax runs it.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import threading
from pathlib import Path

ENV = "JAXPG_COMPILE_CACHE"
# Programs that compile faster than this are not written (jax's option of the same name).
# The CLI's smallest programs worth keeping (the jitted initialisation) take ~1 s.
MIN_COMPILE_TIME_SECS = 0.2
MAX_BYTES = 2 << 30  # least recently used entries are deleted above 2 GiB

_MAGIC = b"jaxpg-cache-1\n"
_DIGEST = hashlib.sha256().digest_size
_SUFFIX = ".jaxpg"

#: Counts since the process started: ``hits`` (entries returned to jax), ``misses`` (no
#: entry), ``rejected`` (an entry whose digest did not match: recompiled, never used),
#: ``writes``.
STATS = {"hits": 0, "misses": 0, "rejected": 0, "writes": 0}
_lock = threading.Lock()
_installed: dict[str, Path | None] = {"directory": None}


def user_cache_dir() -> Path:
    """The platform's per-user cache directory for jaxpg (not created)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = str(Path.home() / "Library" / "Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jaxpg"


def versioned(directory: str | os.PathLike) -> Path:
    """``directory/jax-<version>-jaxlib-<version>``: one cache per jax/jaxlib pair."""
    import jax
    import jaxlib

    return Path(directory) / f"jax-{jax.__version__}-jaxlib-{jaxlib.__version__}"


def _seal(value: bytes) -> bytes:
    return _MAGIC + hashlib.sha256(value).digest() + value


def _unseal(blob: bytes) -> bytes | None:
    """The entry's bytes if its digest matches, else ``None``."""
    head = len(_MAGIC) + _DIGEST
    if len(blob) < head or not blob.startswith(_MAGIC):
        return None
    digest, value = blob[len(_MAGIC) : head], blob[head:]
    return value if hashlib.sha256(value).digest() == digest else None


def _cache_class():
    """`SealedFileCache`, built on jax's cache interface (imported when needed)."""
    from jax._src.compilation_cache_interface import CacheInterface

    class SealedFileCache(CacheInterface):
        """jax's cache interface over files with a digest; atomic writes; LRU above a size."""

        def __init__(self, path: str | os.PathLike, max_bytes: int = MAX_BYTES):
            self._path = Path(path)
            self._path.mkdir(parents=True, exist_ok=True)
            self.max_bytes = max_bytes

        def _file(self, key: str) -> Path:
            if not key or "/" in key or os.sep in key:
                raise ValueError(f"bad compilation-cache key {key!r}")
            return self._path / f"{key}{_SUFFIX}"

        def get(self, key: str) -> bytes | None:
            path = self._file(key)
            try:
                blob = path.read_bytes()
            except OSError:  # no entry, or one that cannot be read
                with _lock:
                    STATS["misses"] += 1
                return None
            value = _unseal(blob)
            with _lock:
                STATS["hits" if value is not None else "rejected"] += 1
            if value is not None:
                try:
                    os.utime(path)  # least recently used goes first
                except OSError:
                    pass
            return value

        def put(self, key: str, value: bytes) -> None:
            path = self._file(key)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self._path)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(_seal(value))
                os.replace(tmp, path)  # replaces a damaged entry too
            except OSError:
                Path(tmp).unlink(missing_ok=True)
                return  # a cache that cannot be written only costs a compile
            with _lock:
                STATS["writes"] += 1
            self._evict()

        def _evict(self) -> None:
            try:
                entries = [(p.stat(), p) for p in self._path.glob(f"*{_SUFFIX}")]
            except OSError:
                return
            total = sum(s.st_size for s, _ in entries)
            for s, p in sorted(entries, key=lambda e: e[0].st_mtime):
                if total <= self.max_bytes:
                    break
                p.unlink(missing_ok=True)
                total -= s.st_size

        def clear(self) -> None:
            for p in self._path.glob(f"*{_SUFFIX}"):
                p.unlink(missing_ok=True)

    return SealedFileCache


def _install(directory: Path) -> None:
    """Make jax build a `SealedFileCache` for ``directory`` (and only for it)."""
    from jax._src import compilation_cache as cc

    original = getattr(cc.get_file_cache, "_jaxpg_original", cc.get_file_cache)
    sealed = _cache_class()

    def get_file_cache(path):
        if Path(path) == _installed["directory"]:
            try:
                return sealed(path), path
            except OSError:  # an unwritable directory: compile as if there were no cache
                return None
        return original(path)

    get_file_cache._jaxpg_original = original  # type: ignore[attr-defined]
    cc.get_file_cache = get_file_cache
    cc.reset_cache()  # jax builds its cache object again, for the new directory


def enable(
    directory: str | os.PathLike | None = None,
    *,
    min_compile_time_secs: float = MIN_COMPILE_TIME_SECS,
) -> Path | None:
    """Turn the persistent compilation cache on for this process; call before compiling.

    Args:
      directory: where to keep it; ``None`` uses ``$JAXPG_COMPILE_CACHE`` or, when that
        is unset, `user_cache_dir`. A subdirectory per jax/jaxlib version is used
        inside it (`versioned`). ``$JAXPG_COMPILE_CACHE`` set to an empty string
        turns the cache off.
      min_compile_time_secs: programs that compile faster are not written.

    Returns:
      The directory the entries are written to, or ``None`` when the cache is off.
    """
    import jax

    if directory is None:
        env = os.environ.get(ENV)
        if env is not None and not env.strip():
            return None
        directory = env or user_cache_dir()
    path = versioned(Path(directory).expanduser()).resolve()
    _installed["directory"] = path
    _install(path)
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_time_secs)
    return path


def disable() -> None:
    """Turn every persistent compilation cache off for this process (jaxpg's and jax's)."""
    import jax

    jax.config.update("jax_enable_compilation_cache", False)
    _installed["directory"] = None


def configure_cli(enabled: bool) -> Path | None:
    """The command line's one call, after parsing and before compiling.

    ``enabled=False`` (``--no-compile-cache``) turns every cache off. Otherwise
    ``$JAXPG_COMPILE_CACHE`` or the user cache directory, unless jax's own cache
    directory is already configured and ``$JAXPG_COMPILE_CACHE`` is unset: then jax's
    setting is left as it is.

    Returns:
      jaxpg's cache directory, or ``None`` when jaxpg's cache is not in use.
    """
    if not enabled:
        disable()
        return None
    if os.environ.get(ENV) is None:
        import jax

        if jax.config.jax_compilation_cache_dir:
            return None
    return enable()
