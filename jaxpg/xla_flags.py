"""XLA:CPU settings jaxpg applies when it is imported, before JAX's backend starts.

XLA:CPU's concurrency-optimized scheduler (on by default) can deadlock a compiled
program in jaxlib 0.10. A ``jax.vmap`` over whole runs batches the QR of the
orthogonal initializer; jaxlib's batched LAPACK kernels block a thread-pool thread
while they wait for their batch, and with that scheduler two of them can run at once
and take every thread of a 2-core machine: the program finishes its first call and
then waits forever in ``block_until_ready`` on a later one, every XLA worker thread
idle (``gdb``: all parked on condition variables). Reproduce it with
``python scripts/xla_cpu_hang.py`` (2 seeds of a Breakout-MinAtar init and rollout,
vmapped): with jaxlib 0.10.2 the default hung in 9 of 9 trials, with the scheduler
off in none of 9; with jaxlib 0.11.2 neither hangs. Turning that scheduler off costs no
speed measured side by side here (CartPole PPO at 4/64/512 envs and Breakout-MinAtar
at 64 envs within the noise of repeated runs). ``jaxpg.sweep`` also initialises runs
one at a time (``lax.map``), which avoids the batched QR altogether.

With jaxlib 0.10.x, ``import jaxpg`` therefore appends
``--xla_cpu_enable_concurrency_optimized_scheduler=false`` to ``XLA_FLAGS`` unless
the variable already names that flag (set it to ``true`` yourself to keep XLA's
default). Newer jaxlibs are left alone (an unknown XLA flag is a fatal error, so
jaxpg does not pass one to a release it was not tested with). The setting only
reaches XLA if JAX's backend has not started yet: import jaxpg before running any
JAX computation, or export the flag in the shell. ``import jaxpg`` warns when it
comes too late. The flag is appended whatever the backend; only XLA:CPU reads it, so
GPU and TPU programs are unaffected (docs/gpu.md).
"""

from __future__ import annotations

import importlib.metadata
import os
import warnings

SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"


def apply_cpu_workarounds(environ: dict | None = None, jaxlib_version: str | None = None) -> bool:
    """Turn XLA:CPU's concurrency-optimized scheduler off unless the user chose.

    Args:
      environ: the environment to edit (``os.environ`` when ``None``).
      jaxlib_version: the installed jaxlib's version (looked up when ``None``).

    Returns:
      ``True`` if the flag was appended to ``XLA_FLAGS``; ``False`` if the user's
      ``XLA_FLAGS`` already names it (their value is kept) or jaxlib is not 0.10.x.

    Example:
      >>> env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
      >>> apply_cpu_workarounds(env, "0.10.2"), env["XLA_FLAGS"].split()[-1]
      (True, '--xla_cpu_enable_concurrency_optimized_scheduler=false')
      >>> apply_cpu_workarounds(env, "0.10.2"), apply_cpu_workarounds({}, "0.11.2")
      (False, False)
    """
    environ = os.environ if environ is None else environ
    if jaxlib_version is None:
        try:
            jaxlib_version = importlib.metadata.version("jaxlib")
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover
            return False
    flags = environ.get("XLA_FLAGS", "")
    if not jaxlib_version.startswith("0.10.") or SCHEDULER_FLAG in flags:
        return False
    environ["XLA_FLAGS"] = f"{flags} {SCHEDULER_FLAG}=false".strip()
    if environ is os.environ and _backend_started():
        warnings.warn(
            "jaxpg was imported after JAX's backend started, so XLA:CPU's "
            "concurrency-optimized scheduler (which can deadlock vmapped runs) is still "
            f"on; import jaxpg first or export XLA_FLAGS={SCHEDULER_FLAG}=false",
            RuntimeWarning,
            stacklevel=3,
        )
    return True


def _backend_started() -> bool:
    """Whether JAX has already created its backends (then XLA_FLAGS is read)."""
    try:
        from jax._src import xla_bridge
    except ImportError:  # pragma: no cover - a jax without the private module
        return False
    check = getattr(xla_bridge, "backends_are_initialized", None)
    return bool(check()) if check is not None else False
