"""Atomic checkpoints of a :class:`~jaxpg.update.TrainState` with flax serialization.

A checkpoint is one msgpack file (``flax.serialization``) holding the whole
train state (params, optimizer state, env state, PRNG key, update step, env
steps) plus the resolved config and a little metadata. Typed PRNG keys are
stored as their raw ``key_data`` and re-wrapped on load.

Files are written atomically (:func:`jaxpg.files.write_bytes_atomic`): a process
killed at any moment leaves either the previous set of checkpoints or the new
one, never a partial file under a checkpoint name. Each file ends with the
SHA-256 of its bytes (:func:`jaxpg.files.seal`), verified on every read, so a
damaged or truncated checkpoint is a :class:`CheckpointError`, never wrong numbers.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import numpy as np

from jaxpg.config import Config
from jaxpg.files import IntegrityError, read_sealed, write_sealed
from jaxpg.files import write_bytes_atomic as write_bytes_atomic  # the old home, kept

FORMAT = 1
_NAME = re.compile(r"^ckpt_(\d{8})\.msgpack$")
# Config fields that fix array shapes or the meaning of the saved state.
SHAPE_FIELDS = (
    "env",
    "estimator",
    "num_envs",
    "num_steps",
    "hidden_sizes",
    "activation",
    "rollout",
    "network",
    "conv_channels",
    "layer_norm",
    "shared_torso",
    "optimizer",
    "normalize_obs",
    "normalize_rewards",
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not match the run's config."""


class IncompatibleCheckpointError(CheckpointError):
    """A readable checkpoint written for a config with other shapes."""


def checkpoint_name(update_step: int) -> str:
    """File name of the checkpoint taken after ``update_step`` updates.

    Args:
      update_step: updates done when the checkpoint was taken.

    Returns:
      ``"ckpt_<update_step, 8 digits>.msgpack"``.

    Example:
      >>> checkpoint_name(42)
      'ckpt_00000042.msgpack'
    """
    return f"ckpt_{update_step:08d}.msgpack"


def list_checkpoints(directory: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(update_step, path)`` of every checkpoint in ``directory``, oldest first.

    Args:
      directory: a checkpoint directory; a missing one has no checkpoints.

    Returns:
      The pairs sorted by update step (files are listed by name only, not read).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = _NAME.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def _to_host(state) -> dict:
    key = state.key
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    tree = flax.serialization.to_state_dict(state.replace(key=key))
    return jax.tree.map(np.asarray, tree)


def save(
    directory: str | os.PathLike, state, config: Config, meta: dict | None = None, keep: int = 3
) -> Path:
    """Save ``state`` as ``directory/ckpt_<update_step>.msgpack`` and prune old ones.

    Args:
      directory: checkpoint directory (created if missing).
      state: a ``TrainState`` (on device or host).
      config: the run's resolved config, stored for compatibility checks.
      meta: extra JSON-serialisable metadata (e.g. wall time so far).
      keep: how many of the newest checkpoints to keep (older ones are deleted
        only after the new one is durable).

    Returns:
      The checkpoint's path.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    step = int(state.update_step)
    payload = {
        "format": FORMAT,
        "config": json.dumps(config.to_dict(), sort_keys=True),
        "meta": json.dumps(meta or {}, sort_keys=True),
        "state": _to_host(state),
    }
    path = directory / checkpoint_name(step)
    write_sealed(path, flax.serialization.msgpack_serialize(payload))
    for _, old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def read(path: str | os.PathLike) -> tuple[dict, Config, dict]:
    """Read and verify a checkpoint file.

    Args:
      path: a checkpoint file.

    Returns:
      ``(state dict, config, meta)``: the train state as a nested dict of NumPy
      arrays (PRNG key as raw ``key_data``), the run's :class:`Config` and the
      metadata dict.

    Raises:
      CheckpointError: unreadable, damaged (checksum), truncated or of another
        format.
    """
    path = Path(path)
    try:
        payload = flax.serialization.msgpack_restore(read_sealed(path))
        if payload.get("format") != FORMAT:
            raise CheckpointError(f"unsupported checkpoint format {payload.get('format')!r}")
        config = Config.from_dict(json.loads(payload["config"]))
        meta = json.loads(payload["meta"])
        return payload["state"], config, meta
    except CheckpointError:
        raise
    except IntegrityError as exc:
        raise CheckpointError(f"cannot read checkpoint: {exc}") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # any decoding problem is one clear error
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from None


def check_compatible(saved: Config, config: Config, path: Any) -> None:
    """Raise :class:`CheckpointError` if ``saved`` cannot be restored into ``config``.

    Args:
      saved: the checkpoint's config.
      config: the run's config.
      path: the checkpoint, for the message.

    Raises:
      IncompatibleCheckpointError: the configs differ in a :data:`SHAPE_FIELDS`
        field; the message lists every such field.
    """
    diffs = [
        f"{f}={getattr(saved, f)!r} (run has {getattr(config, f)!r})"
        for f in SHAPE_FIELDS
        if getattr(saved, f) != getattr(config, f)
    ]
    if diffs:
        raise IncompatibleCheckpointError(
            f"checkpoint {path} is from an incompatible config: {', '.join(diffs)}"
        )


def restore(path: str | os.PathLike, template, config: Config):
    """Restore the checkpoint at ``path`` into the structure of ``template``.

    Args:
      path: a checkpoint file.
      template: a ``TrainState`` of the right structure (e.g. a fresh
        ``init_state``); its values are ignored.
      config: the config the state will be used with; the checkpoint's config
        must agree on every field in ``SHAPE_FIELDS``.

    Returns:
      ``(state, meta)`` with the typed PRNG key re-wrapped.
    """
    tree, saved, meta = read(path)
    check_compatible(saved, config, path)
    # Fields added since format 1 was written; a checkpoint without them had them off.
    for name in ("obs_norm", "reward_norm"):
        tree.setdefault(name, None)
    if isinstance(tree.get("env"), dict):
        tree["env"].setdefault("hidden", None)  # the recurrent state
    key = template.key
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    host_template = template.replace(key=jax.random.key_data(key) if typed else key)
    try:
        state = flax.serialization.from_state_dict(host_template, tree)
        _check_shapes(host_template, state, path)
    except CheckpointError:
        raise
    except Exception as exc:
        raise IncompatibleCheckpointError(
            f"checkpoint {path} does not match this run: {exc}"
        ) from None
    if typed:
        impl = jax.random.key_impl(key)
        state = state.replace(key=jax.random.wrap_key_data(np.asarray(state.key), impl=impl))
    return jax.tree.map(jax.numpy.asarray, state), meta


def _check_shapes(template, state, path) -> None:
    for (kp, a), b in zip(
        jax.tree_util.tree_leaves_with_path(template), jax.tree.leaves(state), strict=True
    ):
        if np.shape(a) != np.shape(b):
            raise IncompatibleCheckpointError(
                f"checkpoint {path} does not match this run: "
                f"{jax.tree_util.keystr(kp)} has shape {np.shape(b)}, expected {np.shape(a)}"
            )
