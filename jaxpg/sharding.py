"""Devices for sweeps: a 1-D mesh over every device, the run axis sharded on it.

Conventions: a sweep's runs form one flat leading axis ``[R, ...]`` that is
split evenly over a :class:`jax.sharding.Mesh` with the single axis ``"runs"``
(``PartitionSpec("runs")``), so ``R`` must be a multiple of the device count
(callers pad). Inputs are built with ``jax.make_array_from_callback`` so the
same code runs single-host and multi-host (after :func:`initialize_distributed`,
``jax.devices()`` lists every host's devices and each process supplies the
shards of its own devices). Nothing here is traced.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

RUN_AXIS = "runs"


def initialize_distributed(**kwargs) -> None:
    """Join a multi-host cluster (``jax.distributed.initialize``); call before any JAX work.

    Args:
      **kwargs: passed through (``coordinator_address``, ``num_processes``,
        ``process_id``, ...); on SLURM/TPU pods JAX detects them itself.
    """
    jax.distributed.initialize(**kwargs)


def run_mesh(devices=None) -> Mesh:
    """A 1-D mesh named ``"runs"`` over ``devices`` (default: all, every host)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (RUN_AXIS,))


def run_sharding(mesh: Mesh) -> NamedSharding:
    """Shard the leading (run) axis over the mesh; trailing axes replicated."""
    return NamedSharding(mesh, PartitionSpec(RUN_AXIS))


def round_up(n: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``n``.

    Example:
      >>> round_up(6, 4), round_up(8, 4)
      (8, 8)
    """
    return -(-n // multiple) * multiple


def put_runs(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """Place a host array ``[R, ...]`` as a global array sharded over runs.

    Every process holds the full ``x`` and supplies its own devices' shards.
    """
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def fetch(tree):
    """Bring a (sharded) pytree of arrays to the host as NumPy, gathering across hosts."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def _available_ram() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def device_memory_budget(mesh: Mesh, fraction: float = 0.5) -> tuple[int, str]:
    """Bytes one device may use for a sweep chunk, and where the figure came from.

    Accelerators report ``bytes_limit - bytes_in_use`` through
    ``memory_stats()``. CPU devices share the host's RAM, so the budget is the
    available RAM divided by the number of local devices. ``fraction`` leaves
    headroom for XLA's own buffers and for other processes.

    Args:
      mesh: the run mesh.
      fraction: share of the free memory to plan for, in (0, 1].

    Returns:
      ``(bytes, source)`` with ``source`` one of ``"device"``, ``"host-ram"``,
      ``"fallback"`` (1 GiB when nothing can be measured).
    """
    device = mesh.devices.flat[0]
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - some backends raise instead of returning None
        stats = None
    if stats and stats.get("bytes_limit"):
        free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
        return int(free * fraction), "device"
    ram = _available_ram()
    if ram:
        local = max(1, sum(d.process_index == jax.process_index() for d in mesh.devices.flat))
        return int(ram * fraction / local), "host-ram"
    return 1 << 30, "fallback"
