"""Search spaces over the traced hyperparameters, checked before anything compiles.

A dimension is written ``FIELD=KIND:ARGS``: ``lr=loguniform:1e-4:1e-2``,
``ent_coef=uniform:0:0.02`` or ``lam=choice:0.9,0.95,0.99``. ``FIELD`` is a
traced field (:data:`jaxpg.config.TRACED_FIELDS`) or a grid alias
(``learning_rate``, ``gae_lambda``, ...): searches keep the population in one
compiled program, so only traced fields can differ between members. Every
bound and choice must itself be a valid ``Config`` value.

Sampling and perturbing (:func:`sample`, :func:`perturb`) are traceable: they
run inside the search programs, on a ``[P]`` batch of members.

* ``uniform``: ``low + u (high − low)``; perturbed by a factor ``0.8`` or ``1.2``
  and clipped to ``[low, high]``.
* ``loguniform``: ``exp(log low + u (log high − log low))``; perturbed the same way.
* ``choice``: one of the values, equally likely; perturbed to a neighbouring
  value in the order given (clipped at the ends).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxpg.config import TRACED_FIELDS, Config, HParams

KINDS = ("loguniform", "uniform", "choice")


class Dim(NamedTuple):
    """One searched hyperparameter."""

    field: str  # an HParams field
    kind: str  # one of KINDS
    low: float = math.nan  # uniform / loguniform bounds
    high: float = math.nan
    choices: tuple[float, ...] = ()  # choice values, in order

    def text(self) -> str:
        """The ``FIELD=KIND:ARGS`` form (what :func:`parse_dim` reads)."""
        if self.kind == "choice":
            return f"{self.field}=choice:{','.join(repr(c) for c in self.choices)}"
        return f"{self.field}={self.kind}:{self.low!r}:{self.high!r}"


class Space(NamedTuple):
    """A checked search space: one :class:`Dim` per searched field, in the order given."""

    dims: tuple[Dim, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(d.field for d in self.dims)

    def texts(self) -> list[str]:
        return [d.text() for d in self.dims]


def parse_dim(text: str) -> Dim:
    """Read ``FIELD=KIND:ARGS`` (aliases resolved; values not yet checked against a config).

    Raises:
      ValueError: a one-line message naming the dimension and the allowed forms.

    Example:
      >>> parse_dim("learning_rate=loguniform:1e-4:1e-2")
      Dim(field='lr', kind='loguniform', low=0.0001, high=0.01, choices=())
    """
    from jaxpg.grid import canonical_name

    forms = "FIELD=loguniform:LOW:HIGH, FIELD=uniform:LOW:HIGH or FIELD=choice:V1,V2,..."
    name, sep, rest = text.partition("=")
    kind, _, args = rest.partition(":")
    kind = kind.strip()
    if not sep or kind not in KINDS or not args.strip():
        raise ValueError(f"search space {text!r}: expected {forms}")
    field = canonical_name(name.strip().replace("-", "_"))
    if field not in TRACED_FIELDS:
        raise ValueError(
            f"search space {text!r}: {field} is static; a search varies traced fields only "
            f"({', '.join(TRACED_FIELDS)})"
        )
    try:
        if kind == "choice":
            values = tuple(float(v) for v in args.split(",") if v.strip())
            return Dim(field, kind, choices=values)
        parts = args.split(":")
        if len(parts) != 2:
            raise ValueError(args)
        return Dim(field, kind, float(parts[0]), float(parts[1]))
    except ValueError:
        raise ValueError(
            f"search space {text!r}: cannot read the numbers; expected {forms}"
        ) from None


def check_space(config: Config, space: Sequence[str | Dim] | Mapping[str, str]) -> Space:
    """Parse and check every dimension against ``config`` (before compiling).

    Args:
      config: the base configuration (bounds must be valid values of it).
      space: ``["lr=loguniform:1e-4:1e-2", ...]``, ``{"lr": "loguniform:1e-4:1e-2"}``
        (the config-file form) or :class:`Dim` records.

    Returns:
      The checked :class:`Space`.

    Raises:
      ValueError: one line naming the dimension: an unknown or static field, a
        field given twice, bounds out of order or invalid for ``Config``
        (``loguniform`` needs ``low > 0``), fewer than two distinct choices.

    Example:
      >>> check_space(Config(), ["lr=loguniform:1e-4:1e-2"]).fields
      ('lr',)
    """
    if isinstance(space, Mapping):
        space = [f"{k}={v}" for k, v in space.items()]
    dims = [d if isinstance(d, Dim) else parse_dim(str(d)) for d in space]
    if not dims:
        raise ValueError("search space is empty: give at least one --space FIELD=KIND:ARGS")
    seen: set[str] = set()
    for d in dims:
        if d.field in seen:
            raise ValueError(f"search space: {d.field} given twice")
        seen.add(d.field)
        if d.kind not in KINDS:
            raise ValueError(f"search space {d.field}: kind {d.kind!r} is not one of {KINDS}")
        if d.kind == "choice":
            if len(set(d.choices)) < 2 or len(set(d.choices)) != len(d.choices):
                raise ValueError(f"search space {d.text()}: give two or more distinct choices")
            values = d.choices
        else:
            if not (math.isfinite(d.low) and math.isfinite(d.high) and d.low < d.high):
                raise ValueError(f"search space {d.text()}: needs finite LOW < HIGH")
            if d.kind == "loguniform" and d.low <= 0:
                raise ValueError(f"search space {d.text()}: loguniform needs LOW > 0")
            values = (d.low, d.high)
        for v in values:
            try:
                config.replace(**{d.field: v})
            except (ValueError, TypeError) as exc:
                raise ValueError(f"search space {d.text()}: {exc}") from None
    return Space(tuple(dims))


def _sample_dim(key: jax.Array, d: Dim, n: int) -> jax.Array:
    if d.kind == "choice":
        choices = jnp.asarray(d.choices, jnp.float32)
        return choices[jax.random.randint(key, (n,), 0, len(d.choices))]
    u = jax.random.uniform(key, (n,), jnp.float32)
    if d.kind == "uniform":
        return jnp.float32(d.low) + u * jnp.float32(d.high - d.low)
    lo, hi = math.log(d.low), math.log(d.high)
    return jnp.clip(jnp.exp(jnp.float32(lo) + u * jnp.float32(hi - lo)), d.low, d.high)


def sample(key: jax.Array, space: Space, config: Config, n: int) -> HParams:
    """``n`` members' hyperparameters: searched fields drawn from ``space``, others from ``config``.

    Args:
      key: PRNG key.
      space: the checked space.
      config: values of the fields the space leaves out.
      n: members.

    Returns:
      :class:`HParams` of ``[n]`` float32.
    """
    base = config.hparams()
    keys = jax.random.split(key, len(space.dims))
    drawn = {d.field: _sample_dim(k, d, n) for k, d in zip(keys, space.dims, strict=True)}
    return HParams(*(drawn.get(f, jnp.full((n,), getattr(base, f))) for f in TRACED_FIELDS))


def perturb(
    key: jax.Array,
    hp: HParams,
    space: Space,
    *,
    factors: tuple[float, float] = (0.8, 1.2),
    resample_prob: float = 0.25,
) -> HParams:
    """PBT's explore step on ``[P]`` members: resample, or perturb within the bounds.

    Each searched value is redrawn from its prior with probability
    ``resample_prob``; otherwise a ``uniform``/``loguniform`` value is multiplied
    by ``factors[0]`` or ``factors[1]`` (equally likely) and clipped to
    ``[low, high]``, and a ``choice`` moves to a neighbouring choice. Fields
    outside the space are returned unchanged.

    Args:
      key: PRNG key.
      hp: ``[P]`` hyperparameters.
      space: the checked space.
      factors: the two perturbation factors.
      resample_prob: probability of a fresh draw, in [0, 1].

    Returns:
      ``[P]`` :class:`HParams`, every searched value within its bounds.
    """
    n = hp.lr.shape[0]
    out = hp._asdict()
    keys = jax.random.split(key, len(space.dims))
    for k, d in zip(keys, space.dims, strict=True):
        k_resample, k_up, k_draw = jax.random.split(k, 3)
        v = out[d.field]
        up = jax.random.bernoulli(k_up, 0.5, (n,))
        if d.kind == "choice":
            choices = jnp.asarray(d.choices, jnp.float32)
            idx = jnp.argmin(jnp.abs(v[:, None] - choices[None, :]), axis=1)
            moved = choices[jnp.clip(idx + jnp.where(up, 1, -1), 0, len(d.choices) - 1)]
        else:
            factor = jnp.where(up, jnp.float32(factors[1]), jnp.float32(factors[0]))
            moved = jnp.clip(v * factor, d.low, d.high)
        fresh = _sample_dim(k_draw, d, n)
        out[d.field] = jnp.where(jax.random.uniform(k_resample, (n,)) < resample_prob, fresh, moved)
    return HParams(**out)


def point_of(hp: HParams, space: Space, i: int) -> dict:
    """Member ``i``'s searched values as ``{field: float}`` (host side)."""
    return {f: float(getattr(hp, f)[i]) for f in space.fields}
