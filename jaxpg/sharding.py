"""Devices: 1-D meshes over every device, for a sweep's runs or one run's envs.

Conventions: a sweep's runs form one flat leading axis ``[R, ...]`` that is
split evenly over a :class:`jax.sharding.Mesh` with the single axis ``"runs"``
(``PartitionSpec("runs")``), so ``R`` must be a multiple of the device count
(callers pad). Inputs are built with ``jax.make_array_from_callback`` so the
same code runs single-host and multi-host (after :func:`initialize_distributed`,
``jax.devices()`` lists every host's devices and each process supplies the
shards of its own devices).

One large run is sharded along its env batch instead: every leaf of the
``TrainState``'s ``env`` carry has the leading axis ``num_envs`` and is split
over a mesh with the axis ``"envs"`` (``PartitionSpec("envs")``); params,
optimizer state, key and counters are replicated. ``num_envs`` must be a
multiple of the device count (:func:`check_env_split`). XLA's SPMD partitioner
(GSPMD) keeps the rollout's ``[T, B, ...]`` tensors split along ``B`` and
inserts the collectives the program needs (today: an all-gather of the batch
before PPO's shuffle, after which the gradient steps run replicated, and sums
of the metrics), so the program computes what the single-device program
computes, up to the order of floating-point sums. Only :func:`constrain` is
called inside traced code.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

RUN_AXIS = "runs"
ENV_AXIS = "envs"


def initialize_distributed(**kwargs) -> None:
    """Join a multi-host cluster (``jax.distributed.initialize``); call before any JAX work.

    Args:
      **kwargs: passed through (``coordinator_address``, ``num_processes``,
        ``process_id``, ...); on SLURM/TPU pods JAX detects them itself.
    """
    jax.distributed.initialize(**kwargs)


def run_mesh(devices=None, axis: str = RUN_AXIS) -> Mesh:
    """A 1-D mesh named ``axis`` (default ``"runs"``) over ``devices`` (default: all hosts').

    Args:
      devices: the devices, in mesh order; ``None`` takes ``jax.devices()``.
      axis: the mesh axis name.

    Returns:
      A :class:`Mesh` of shape ``[len(devices)]``.
    """
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (axis,))


def env_mesh(devices=None) -> Mesh:
    """A 1-D mesh named ``"envs"`` over ``devices`` (default: all, every host).

    Args:
      devices: the devices; ``None`` takes ``jax.devices()``.

    Returns:
      A :class:`Mesh` with the single axis :data:`ENV_AXIS`.
    """
    return run_mesh(devices, ENV_AXIS)


def select_devices(count: int | str | None = "all") -> list:
    """The first ``count`` devices of ``jax.devices()``, or all of them for ``"all"``/``None``.

    Args:
      count: how many devices, ``"all"`` or ``None``.

    Returns:
      The list of devices.

    Raises:
      ValueError: ``count`` is below 1 or above the number of devices, or, on a
        multi-host cluster, leaves out any device (every process must take part).
    """
    devices = jax.devices()
    if count is None or count == "all":
        return devices
    count = int(count)
    if not 1 <= count <= len(devices):
        raise ValueError(
            f"devices={count} must lie in [1, {len(devices)}] (there are {len(devices)} device(s))"
        )
    if jax.process_count() > 1 and count != len(devices):
        raise ValueError(
            f"devices={count}: a multi-host run uses every device "
            f"({len(devices)} over {jax.process_count()} processes); pass 'all'"
        )
    return devices[:count]


def check_env_split(num_envs: int, num_devices: int) -> None:
    """Raise ``ValueError`` unless ``num_envs`` splits evenly over ``num_devices``.

    Args:
      num_envs: B, the run's parallel environments.
      num_devices: devices of the env mesh.

    Raises:
      ValueError: naming ``num_envs`` and the next multiple that would work.

    Example:
      >>> check_env_split(8, 4)
      >>> check_env_split(6, 4)
      Traceback (most recent call last):
      ...
      ValueError: num_envs=6 must be a multiple of the device count 4 (try num_envs=8)
    """
    if num_envs % num_devices:
        raise ValueError(
            f"num_envs={num_envs} must be a multiple of the device count {num_devices} "
            f"(try num_envs={round_up(num_envs, num_devices)})"
        )


def state_shardings(state, mesh: Mesh):
    """Shardings for a ``TrainState``-shaped pytree: ``state.env`` split, the rest replicated.

    Args:
      state: a ``TrainState`` of arrays or of ``jax.ShapeDtypeStruct`` (e.g. from
        ``jax.eval_shape``); only its structure is used.
      mesh: an :func:`env_mesh`.

    Returns:
      The same structure with a :class:`NamedSharding` per leaf:
      ``PartitionSpec("envs")`` under ``state.env``, ``PartitionSpec()`` elsewhere.
    """
    replicated = NamedSharding(mesh, PartitionSpec())
    split = NamedSharding(mesh, PartitionSpec(ENV_AXIS))
    out = jax.tree.map(lambda _: replicated, state)
    return out.replace(env=jax.tree.map(lambda _: split, state.env))


def constrain(state, shardings):
    """Inside ``jit``: pin ``state`` to ``shardings`` (``None``: leave it to XLA).

    Args:
      state: a pytree being traced (a ``TrainState``).
      shardings: the same structure of shardings (:func:`state_shardings`), or ``None``.

    Returns:
      ``state`` with a sharding constraint, or ``state`` itself.
    """
    if shardings is None:
        return state
    return jax.lax.with_sharding_constraint(state, shardings)


def put_state(state, shardings):
    """Place a host (or single-device) ``TrainState`` on ``shardings``.

    Multi-host, every process passes the same values and supplies its own
    devices' shards (:func:`put_runs`); typed PRNG keys travel as ``key_data``.

    Args:
      state: a ``TrainState`` of host or device arrays.
      shardings: the same structure of shardings (:func:`state_shardings`).

    Returns:
      The state as global arrays with those shardings (typed keys re-wrapped).
    """

    def put(x, s):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            data = put(jax.random.key_data(x), s)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
        return put_runs(np.asarray(x), s)

    return jax.tree.map(put, state, shardings)


def run_sharding(mesh: Mesh) -> NamedSharding:
    """Shard the leading (run) axis over the mesh; trailing axes replicated.

    Args:
      mesh: a :func:`run_mesh`.

    Returns:
      ``NamedSharding(mesh, PartitionSpec("runs"))``.
    """
    return NamedSharding(mesh, PartitionSpec(RUN_AXIS))


def round_up(n: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``n``.

    Args:
      n: the count to round.
      multiple: a positive integer.

    Returns:
      The rounded count.

    Example:
      >>> round_up(6, 4), round_up(8, 4)
      (8, 8)
    """
    return -(-n // multiple) * multiple


def put_runs(x: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """Place a host array (``[R, ...]`` for a sweep) as a global array with ``sharding``.

    Every process holds the full ``x`` and supplies its own devices' shards.

    Args:
      x: the host array, e.g. ``[R, ...]`` with ``R`` a multiple of the device count.
      sharding: e.g. :func:`run_sharding`.

    Returns:
      A ``jax.Array`` of ``x``'s shape and dtype laid out by ``sharding``.
    """
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def fetch(tree):
    """Bring a (sharded) pytree of arrays to the host as NumPy, gathering across hosts.

    Multi-host this is a collective: every process must call it, in the same order.

    Args:
      tree: a pytree of ``jax.Array``.

    Returns:
      The same structure of NumPy arrays, each of the global shape.
    """
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
