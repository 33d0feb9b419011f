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
import importlib.util
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
    return True


#: jaxlib releases whose XLA_FLAGS parser knows every flag of :func:`cpu_option_flags`
#: (0.10.2 run here; 0.11.2's library lists the flag among its registered flags).
OPTION_JAXLIBS = ("0.10.", "0.11.")

#: Packages that give JAX an accelerator backend (found without importing them);
#: ``jax_plugins`` is the namespace where JAX looks for PJRT plugins (CUDA, ROCm, ...).
_ACCELERATOR_MODULES = ("jax_plugins", "jax_cuda12_plugin", "jax_cuda13_plugin", "libtpu")


def cpu_option_flags() -> list[str]:
    """:data:`jaxpg.compiling.CPU_OPTIONS` written as ``XLA_FLAGS`` flags.

    Example:
      >>> cpu_option_flags()[0]
      '--xla_backend_optimization_level=1'
    """
    from jaxpg.compiling import CPU_OPTIONS

    return [f"--{name}={value}" for name, value in CPU_OPTIONS.items()]


def apply_cpu_options(
    environ: dict | None = None,
    jaxlib_version: str | None = None,
    accelerator: bool | None = None,
) -> list[str]:
    """Append jaxpg's XLA:CPU compiler options to ``XLA_FLAGS`` (:mod:`jaxpg.compiling`).

    Through ``XLA_FLAGS`` they reach every program the process compiles on the
    CPU: the CLI's, and a user's own ``jax.jit(jaxpg.make_train(config))`` or
    ``jax.jit`` of a ``lax.scan`` of ``make_update`` (``jax.jit``'s
    ``compiler_options`` would be refused by a nested jit). A flag the user's
    ``XLA_FLAGS`` already names keeps the user's value.

    Args:
      environ: the environment to edit (``os.environ`` when ``None``).
      jaxlib_version: the installed jaxlib's version (looked up when ``None``).
      accelerator: whether JAX will run on an accelerator (when ``None``: the
        first platform of ``JAX_PLATFORMS`` is not ``cpu``, or, with it unset, a
        GPU or TPU plugin is installed). Accelerators keep XLA's defaults:
        ``xla_backend_optimization_level`` is their LLVM level too.

    Returns:
      The flags appended (none for a jaxlib outside :data:`OPTION_JAXLIBS`: an
      unknown XLA flag is a fatal error, or with an accelerator).

    Example:
      >>> env = {}
      >>> apply_cpu_options(env, "0.10.2", accelerator=False), env["XLA_FLAGS"]
      (['--xla_backend_optimization_level=1'], '--xla_backend_optimization_level=1')
      >>> apply_cpu_options({"XLA_FLAGS": "--xla_backend_optimization_level=3"}, "0.10.2", False)
      []
      >>> apply_cpu_options({}, "0.10.2", accelerator=True), apply_cpu_options({}, "0.12.0")
      ([], [])
    """
    environ = os.environ if environ is None else environ
    if jaxlib_version is None:
        try:
            jaxlib_version = importlib.metadata.version("jaxlib")
        except importlib.metadata.PackageNotFoundError:  # pragma: no cover
            return []
    if not jaxlib_version.startswith(OPTION_JAXLIBS):
        return []
    if accelerator is None:
        accelerator = _accelerator_expected(environ)
    if accelerator:
        return []
    flags = environ.get("XLA_FLAGS", "")
    added = [f for f in cpu_option_flags() if f.split("=")[0] not in flags]
    if added:
        environ["XLA_FLAGS"] = " ".join([flags, *added]).strip()
    return added


def warn_if_late(added: list[str]) -> None:
    """Warn that the ``added`` flags come too late if JAX's backend has started."""
    if added and _backend_started():
        warnings.warn(
            "jaxpg was imported after JAX's backend started, so XLA_FLAGS it sets "
            f"({' '.join(added)}: the XLA:CPU scheduler that can deadlock vmapped runs, "
            "and jaxpg's compiler options) do not apply; import jaxpg first or export them",
            RuntimeWarning,
            stacklevel=3,
        )


def _accelerator_expected(environ) -> bool:
    """Whether JAX will pick a GPU or TPU backend, decided without starting one."""
    platforms = environ.get("JAX_PLATFORMS", "").strip()
    if platforms:
        return platforms.split(",")[0].strip() != "cpu"
    return any(importlib.util.find_spec(m) is not None for m in _ACCELERATOR_MODULES)


def _backend_started() -> bool:
    """Whether JAX has already created its backends (then XLA_FLAGS is read)."""
    try:
        from jax._src import xla_bridge
    except ImportError:  # pragma: no cover - a jax without the private module
        return False
    check = getattr(xla_bridge, "backends_are_initialized", None)
    return bool(check()) if check is not None else False
