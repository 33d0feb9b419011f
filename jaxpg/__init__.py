"""jaxpg: vectorized policy-gradient training in JAX on gymnax environments.

Public API: :class:`Config`, :class:`HParams`, :func:`make_train`,
:func:`make_sharded_train`, :func:`make_update`, :func:`make_init`, and the
modules ``returns``, ``estimators``, ``networks``, ``envs``, ``rollout`` (and
``variance``).

Every submodule (``jaxpg.envs``, ``jaxpg.networks``, ``jaxpg.rollout``,
``jaxpg.variance``, ...) is an attribute right after ``import jaxpg``, and so
are the names that need gymnax (``make_train``, ``make_update``, ...). Those
that import gymnax are loaded on first use: importing gymnax creates arrays and
so starts JAX's backend, after which ``jax.distributed.initialize`` can no
longer be called. ``import jaxpg`` (and the ``jaxpg`` command line, until it
has joined its cluster) leave the backend alone.
"""

import importlib
import importlib.util
import pkgutil
from typing import Any

from jaxpg import lazy_imports, xla_flags

# XLA_FLAGS, before anything can start JAX's backend.
_scheduler = [xla_flags.SCHEDULER_FLAG] if xla_flags.apply_cpu_workarounds() else []
xla_flags.warn_if_late(_scheduler + xla_flags.apply_cpu_options())
lazy_imports.install()  # gymnax's plotting imports run only when used

from jaxpg import estimators, returns  # noqa: E402
from jaxpg.config import ESTIMATORS, Config, HParams  # noqa: E402

__version__ = "0.1.0"

_LAZY = {
    "TrainOutput": "jaxpg.train",
    "make_train": "jaxpg.train",
    "make_sharded_train": "jaxpg.train",
    "TrainState": "jaxpg.update",
    "make_init": "jaxpg.update",
    "make_update": "jaxpg.update",
}

__all__ = [
    "ESTIMATORS",
    "Config",
    "HParams",
    "TrainOutput",
    "TrainState",
    "estimators",
    "make_init",
    "make_sharded_train",
    "make_train",
    "make_update",
    "returns",
]


def _submodules() -> list[str]:
    """The package's public submodules and subpackages (a directory listing)."""
    return [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")  # sets the attribute too
    raise AttributeError(f"module 'jaxpg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_submodules()})
