"""Environments from other JAX suites, as gymnax ``Environment`` adapters.

An id ``"suite/name"`` (``"brax/ant"``, ``"craftax/Craftax-Symbolic-v1"``,
``"jumanji/Snake-v1"``, ``"navix/Navix-DoorKey-5x5-v0"``) names environment
``name`` of ``suite``. Each suite lives in its own module (``jaxpg.suites.brax``
…) with ``make(name) -> (env, env_params)`` and ``names()``; it is imported only
when one of its environments is built, so jaxpg runs without any of them
installed, and asking for a missing one says which extra to install.

Every adapter is a gymnax ``Environment`` whose ``step_env`` does not reset and
whose ``is_truncated`` reports the suite's time limit only, so gymnax's own
``Environment.step`` auto-resets, returns the true final observation in
``info["final_observation"]`` and keeps ``terminated`` (a true terminal state)
apart from ``truncated`` (a time limit).
"""

from __future__ import annotations

import importlib
from typing import Any

import jax


def raw_key(key: jax.Array) -> jax.Array:
    """A typed PRNG key as its ``uint32`` key data (raw keys pass through).

    Suites keep keys inside their states; stored raw, the env state is a tree of
    plain arrays (checkpoints convert it with NumPy) and its dtype does not change
    between reset and step (gymnax's auto-reset selects between the two).
    """
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


# prefix -> (module, pip extra)
SUITES: dict[str, tuple[str, str]] = {
    "brax": ("jaxpg.suites.brax", "brax"),
    "craftax": ("jaxpg.suites.craftax", "craftax"),
    "jumanji": ("jaxpg.suites.jumanji", "jumanji"),
    "navix": ("jaxpg.suites.navix", "navix"),
}


def split_id(env_id: str) -> tuple[str, str]:
    """``"suite/name"`` → ``("suite", "name")``; ValueError for an unknown suite."""
    suite, sep, name = env_id.partition("/")
    if not sep or suite not in SUITES or not name:
        raise ValueError(
            f"env={env_id!r} is not a suite id; allowed: 'suite/name' with suite in "
            f"{', '.join(SUITES)}"
        )
    return suite, name


def is_suite_id(env_id: str) -> bool:
    """True when ``env_id`` is ``"suite/name"`` with a known suite (the suite is not imported)."""
    try:
        split_id(env_id)
    except ValueError:
        return False
    return True


class MissingExtra(ImportError):
    """A suite whose package is not installed; the message names the ``pip install`` line."""


def load(suite: str):
    """Import the adapter module of ``suite``; ImportError naming the extra if it is missing."""
    if suite not in SUITES:
        raise ValueError(f"suite={suite!r} is unknown; allowed: {', '.join(SUITES)}")
    module, extra = SUITES[suite]
    if suite == "brax":  # before Brax imports MuJoCo, which reads MUJOCO_GL once
        from jaxpg.suites.render import prefer_headless_gl

        prefer_headless_gl()
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is None or err.name.split(".")[0] != suite:
            raise
        raise MissingExtra(
            f'the {suite} suite is not installed; install it with: pip install "jaxpg[{extra}]"'
        ) from err


def make(env_id: str) -> tuple[Any, Any]:
    """Build the adapter env of ``"suite/name"`` and its default params.

    Args:
      env_id: ``"suite/name"``, e.g. ``"navix/Navix-Empty-5x5-v0"``.

    Returns:
      ``(env, env_params)``: a gymnax ``Environment`` and its ``default_params``.
    """
    suite, name = split_id(env_id)
    return load(suite).make(name)


def names(suite: str) -> tuple[str, ...]:
    """The ids ``"suite/name"`` that ``suite`` offers (imports the suite)."""
    return tuple(f"{suite}/{n}" for n in load(suite).names())
