"""Sweep grids: names, aliases and values checked before anything compiles.

A grid maps ``Config`` field names (or the aliases in :data:`ALIASES`) to lists
of values; the sweep covers their cartesian product in the order given, first
field outermost. Fields in ``TRACED_FIELDS`` become batched :class:`HParams`
inside one program; any other field is static and gets one program per
combination.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from jaxpg.config import TRACED_FIELDS, Config, HParams, traced_value

# User-friendly names accepted in a grid, mapped to the Config field.
ALIASES = {
    "learning_rate": "lr",
    "gae_lambda": "lam",
    "lambda": "lam",
    "discount": "gamma",
    "clip": "clip_eps",
    "clip_range": "clip_eps",
    "entropy_coef": "ent_coef",
    "value_coef": "vf_coef",
    "max_grad": "max_grad_norm",
    "envs": "num_envs",
    "hidden": "hidden_sizes",
}

# Static fields a grid may not vary (seeds are swept with ``seeds=``).
NOT_SWEEPABLE = ("seed",)


class Grid(NamedTuple):
    """A checked grid: static and traced fields, each ``name -> tuple of values``."""

    static: dict
    traced: dict

    @property
    def static_points(self) -> list[dict]:
        """One dict per static combination (``[{}]`` when nothing static varies)."""
        return _product(self.static)

    @property
    def traced_points(self) -> list[dict]:
        """One dict per traced combination (``[{}]`` when nothing traced varies)."""
        return _product(self.traced)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.static) + tuple(self.traced)


def _product(fields: Mapping[str, Sequence]) -> list[dict]:
    names = list(fields)
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(fields[n] for n in names))
    ]


def sweepable_fields() -> tuple[str, ...]:
    """Config fields a grid may vary: every field except ``seed``."""
    return tuple(f.name for f in dataclasses.fields(Config) if f.name not in NOT_SWEEPABLE)


def canonical_name(name: str) -> str:
    """Resolve an alias (``gae_lambda`` → ``lam``) and reject unknown names.

    Args:
      name: a ``Config`` field or an alias from :data:`ALIASES`.

    Returns:
      The ``Config`` field name.

    Raises:
      ValueError: naming the field and listing the allowed names and aliases
        (``seed`` is never allowed: seeds are swept with ``seeds=``).

    Example:
      >>> canonical_name("gae_lambda"), canonical_name("lr")
      ('lam', 'lr')
    """
    field = ALIASES.get(name, name)
    allowed = sweepable_fields()
    if field == "seed":
        raise ValueError("grid field 'seed' is not allowed: sweep seeds with seeds=/--seeds")
    if field not in allowed:
        aliases = ", ".join(f"{a}→{f}" for a, f in ALIASES.items())
        raise ValueError(
            f"unknown grid field {name!r}; allowed: {', '.join(allowed)} "
            f"(traced, one program: {', '.join(TRACED_FIELDS)}; aliases: {aliases})"
        )
    return field


def check_grid(config: Config, grid: Mapping[str, Sequence] | None) -> Grid:
    """Resolve aliases and validate every name and value of ``grid`` against ``config``.

    Each value is checked by ``Config``'s own validation (so ``gamma=1.5`` fails
    with the allowed range), and every static combination is checked as a whole
    (e.g. ``num_minibatches`` must divide ``num_envs × num_steps``).

    Args:
      config: the base configuration.
      grid: ``{field or alias: [values...]}``.

    Returns:
      The checked :class:`Grid`.

    Raises:
      ValueError: on an unknown or repeated field, an empty or repeated value
        list, or an invalid value (the message names the field).

    Example:
      >>> g = check_grid(Config(), {"gae_lambda": [0.9, 0.95], "num_envs": [4, 8]})
      >>> g.traced, g.static
      ({'lam': (0.9, 0.95)}, {'num_envs': (4, 8)})
    """
    static: dict = {}
    traced: dict = {}
    for name, values in (grid or {}).items():
        field = canonical_name(name)
        if field in static or field in traced:
            raise ValueError(f"grid field {field!r} given twice (as {name!r})")
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            values = [values]
        values = tuple(tuple(v) if isinstance(v, list) else v for v in values)
        if not values:
            raise ValueError(f"grid field {name!r} has no values")
        if len(set(values)) != len(values):
            raise ValueError(f"grid field {name!r} repeats a value: {list(values)}")
        for v in values:
            try:
                config.replace(**{field: v})
            except (ValueError, TypeError) as exc:
                raise ValueError(f"grid {name}={v!r}: {exc}") from None
        if field in TRACED_FIELDS:
            config.check_switches({field: next((v for v in values if v is not None), None)})
        (traced if field in TRACED_FIELDS else static)[field] = values
    for combo in _product(static):
        try:
            config.replace(**combo)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"grid combination {combo}: {exc}") from None
    return Grid(static, traced)


def hparams_batch(config: Config, points: Sequence[Mapping], repeats: int) -> HParams:
    """HParams ``[len(points) × repeats]`` (point-major), float32, as NumPy.

    Run ``j * repeats + s`` gets the values of ``points[j]`` (seed index ``s``);
    a traced field missing from a point takes ``config``'s value.

    Args:
      config: the base configuration (values of fields the points leave out).
      points: traced combinations, ``{traced field: value}`` each
        (:attr:`Grid.traced_points`).
      repeats: runs per point (seeds).

    Returns:
      :class:`HParams` whose every field is a ``[len(points) * repeats]``
      float32 NumPy array.

    Example:
      >>> hparams_batch(Config(), [{"lr": 1e-3}, {"lr": 1e-2}], 2).lr
      array([0.001, 0.001, 0.01 , 0.01 ], dtype=float32)
    """
    rows = [
        [float(traced_value(p.get(f, getattr(config, f)))) for f in TRACED_FIELDS] for p in points
    ]
    table = np.repeat(np.asarray(rows, np.float32).reshape(len(points), -1), repeats, axis=0)
    return HParams(*(table[:, i] for i in range(len(TRACED_FIELDS))))
