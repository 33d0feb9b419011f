"""Optimizers: Optax chains driven by the traced hyperparameters.

Optax owns the optimizer pipeline; this module only says how a run's optimizer
is built from :class:`~jaxpg.config.HParams`, so that ``lr`` and
``max_grad_norm`` stay *traced* (a sweep over them compiles once) whatever the
optimizer is:

* by name (``Config.optimizer``): ``optax.chain(clip_by_global_norm(max_grad_norm),
  OPT(learning_rate=schedule))``;
* a factory ``learning_rate -> GradientTransformation`` (``learning_rate`` is an
  Optax schedule ``step -> lr``): wrapped in the same chain, so clipping and the
  schedule still come from ``HParams``;
* a ready ``GradientTransformation``: used as it is. It owns its learning rate and
  clipping, so ``HParams.lr`` and ``max_grad_norm`` no longer act on it. Nothing is
  ignored silently: a run whose ``lr`` or ``max_grad_norm`` differs from its
  ``Config``'s (a swept ``cfg.hparams(lr=[...])``, or any other value) raises a
  ``ValueError`` naming the field when the values are known while tracing, and
  warns once (:class:`IgnoredHParamWarning`) when they are traced, at the first
  update that runs with them. The config's own values (``cfg.hparams()``, also
  broadcast over seeds) are fine.

The schedule is ``lr × (1 − u / num_updates)`` with ``annealing`` (else ``lr``),
``u`` the update that an optimizer step belongs to (``step // steps_per_update``):
every gradient step of one update uses the same rate.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxpg.config import Config, HParams

_BY_NAME: dict[str, Callable[[Config, Any], optax.GradientTransformation]] = {
    "adam": lambda c, lr: optax.adam(lr, eps=1e-5),
    "adamw": lambda c, lr: optax.adamw(lr, eps=1e-5, weight_decay=c.weight_decay),
    "sgd": lambda c, lr: optax.sgd(lr),
    "rmsprop": lambda c, lr: optax.rmsprop(lr),
}


KL_LR_FACTOR = 1.5  # the KL-adaptive rate's step: ×/÷ 1.5
KL_LR_BOUNDS = (1e-3, 1e3)  # its multiplier stays in this range


class KLScaleState(NamedTuple):
    """:func:`scale_by_kl`'s state: the learning-rate multiplier, a float32 scalar."""

    kl_lr_scale: jax.Array


def scale_by_kl(target_kl: jax.Array | float) -> optax.GradientTransformationExtraArgs:
    """Scale updates by a multiplier adapted to the policy's approximate KL.

    Each call first adapts the multiplier m to ``approx_kl`` (an extra argument:
    the KL of the current policy from the rollout's, measured on this step's
    minibatch): m ← m / 1.5 if KL > 2·target, m · 1.5 if KL < target / 2, else
    unchanged, clipped to :data:`KL_LR_BOUNDS`; then multiplies the updates by m.
    Placed last in a chain it multiplies the learning rate. A target of ``inf``
    (``None`` in a sweep) never adapts: m stays 1.

    Args:
      target_kl: the desired KL d (a float or a traced scalar).

    Returns:
      An Optax transformation whose ``update`` takes ``approx_kl=`` (``optax.chain``
      passes it through).

    Example:
      >>> tx = scale_by_kl(0.01)
      >>> u, s = tx.update({"w": jnp.ones(2)}, tx.init(None), approx_kl=jnp.float32(0.0))
      >>> float(s.kl_lr_scale), u["w"].tolist()  # KL below d/2: the rate grows 1.5×
      (1.5, [1.5, 1.5])
    """

    def init(params):
        del params
        return KLScaleState(jnp.ones((), jnp.float32))

    def update(updates, state, params=None, *, approx_kl, **extra):
        del params, extra
        m = state.kl_lr_scale
        m = jnp.where(approx_kl > 2.0 * target_kl, m / KL_LR_FACTOR, m)
        m = jnp.where(approx_kl < 0.5 * target_kl, m * KL_LR_FACTOR, m)
        m = jnp.clip(m, *KL_LR_BOUNDS)
        m = jnp.where(jnp.isfinite(target_kl), m, state.kl_lr_scale)  # inf: never adapts
        return jax.tree.map(lambda u: u * m.astype(u.dtype), updates), KLScaleState(m)

    return optax.GradientTransformationExtraArgs(init, update)


class Optimizer(NamedTuple):
    """A run's optimizer as a function of the traced hyperparameters.

    Attributes:
      build: ``hparams -> optax.GradientTransformation``, called inside the
        compiled update (the state's structure never depends on the values).
      schedule: ``(hparams, step) -> lr``, the learning rate of optimizer step
        ``step`` (reported as the ``lr`` metric; NaN for a ready-made
        transformation, whose rate jaxpg does not know).
    """

    build: Callable[[HParams], optax.GradientTransformation]
    schedule: Callable[[HParams, jax.Array], jax.Array]


def make_optimizer(
    config: Config,
    num_updates: int,
    steps_per_update: int,
    optimizer: optax.GradientTransformation | Callable | None = None,
) -> Optimizer:
    """The :class:`Optimizer` of a run.

    Args:
      config: gives ``optimizer`` (by name), ``anneal_lr`` and ``weight_decay``.
      num_updates: updates in the run (the annealing horizon).
      steps_per_update: optimizer steps per update (PPO: epochs × minibatches).
      optimizer: ``None`` (use ``config.optimizer``), a factory
        ``learning_rate -> GradientTransformation``, or a ``GradientTransformation``.

    Returns:
      The :class:`Optimizer`.

    Example:
      >>> import jax.numpy as jnp
      >>> cfg = Config(anneal_lr=True)
      >>> opt = make_optimizer(cfg, num_updates=10, steps_per_update=4)
      >>> round(float(opt.schedule(cfg.hparams(lr=1.0), jnp.asarray(8))), 6)  # update 2 of 10
      0.8
    """

    def schedule(hp: HParams, step: jax.Array) -> jax.Array:
        if not config.anneal_lr:
            return hp.lr
        update = (step // steps_per_update).astype(jnp.float32)
        return hp.lr * (1.0 - update / num_updates)

    if isinstance(optimizer, optax.GradientTransformation):
        if config.switched_on("kl_adaptive_lr"):
            raise ValueError(
                f"Config.kl_adaptive_lr={config.kl_adaptive_lr!r} needs jaxpg to build the "
                "optimizer (Config.optimizer or a learning_rate -> transformation factory), "
                "not a ready-made optax transformation; use None"
            )
        unknown = lambda hp, step: jnp.full((), jnp.nan, jnp.float32)  # noqa: E731

        def ready(hp: HParams) -> optax.GradientTransformation:
            check_fixed_hparams(config, hp)
            return optimizer

        return Optimizer(ready, unknown)
    if optimizer is None:
        named = _BY_NAME[config.optimizer]
        factory = lambda lr: named(config, lr)  # noqa: E731
    elif callable(optimizer):
        factory = optimizer
        probe = factory(lambda step: config.lr)  # cheap: Optax builds closures, traces nothing
        if not isinstance(probe, optax.GradientTransformation):
            raise ValueError(
                "optimizer: the factory learning_rate -> GradientTransformation returned "
                f"{type(probe).__name__}, not an optax.GradientTransformation"
            )
    else:
        raise ValueError(
            "optimizer must be an optax.GradientTransformation or a factory "
            f"learning_rate -> GradientTransformation; got {type(optimizer).__name__}"
        )

    def build(hp: HParams) -> optax.GradientTransformation:
        lr = lambda step: schedule(hp, step)  # noqa: E731
        parts = [optax.clip_by_global_norm(hp.max_grad_norm), factory(lr)]
        if config.switched_on("kl_adaptive_lr"):
            parts.append(scale_by_kl(hp.kl_adaptive_lr))
        return optax.chain(*parts)

    return Optimizer(build, schedule)


#: The traced fields a ready-made transformation does not read.
FIXED_FIELDS = ("lr", "max_grad_norm")


class IgnoredHParamWarning(UserWarning):
    """A traced hyperparameter differs from the config's but nothing reads it."""


_warned: set[str] = set()


def _ignored(config: Config, values: dict[str, Any]) -> list[str]:
    """The fields of ``values`` with an element other than ``config``'s value."""
    return [
        f
        for f, v in values.items()
        if np.any(np.asarray(v, np.float32) != np.float32(getattr(config, f)))
    ]


def _message(fields: list[str], config: Config) -> str:
    names = ", ".join(f"HParams.{f}" for f in fields)
    given = ", ".join(f"Config.{f}={getattr(config, f)!r}" for f in fields)
    return (
        f"optimizer: {names} differs from the config's ({given}), but a ready-made "
        "optax.GradientTransformation owns its learning rate and clipping, so the value "
        "would be ignored; pass a factory instead (optimizer=lambda lr: optax.adam(lr)), "
        "which jaxpg drives with the traced lr and clips by max_grad_norm"
    )


def _warn_once(config: Config, *values: Any) -> None:
    fields = [
        f
        for f in _ignored(config, dict(zip(FIXED_FIELDS, values, strict=True)))
        if f not in _warned
    ]
    if fields:
        _warned.update(fields)
        warnings.warn(_message(fields, config), IgnoredHParamWarning, stacklevel=2)


def check_fixed_hparams(config: Config, hp: HParams) -> None:
    """Refuse an ``lr`` or ``max_grad_norm`` that a ready-made optimizer would ignore.

    Values known at trace time are checked at once; traced ones (a jitted or
    vmapped run) are checked by a host callback when the program runs, which
    warns once per field. Equal to ``config``'s values (in every element of a
    batch), they pass.

    Args:
      config: the run's configuration (the values the optimizer was built for).
      hp: the traced hyperparameters of the update.

    Raises:
      ValueError: a concrete ``hp.lr`` or ``hp.max_grad_norm`` differs from ``config``'s.

    Example:
      >>> check_fixed_hparams(Config(lr=1e-3), Config(lr=1e-3).hparams(lr=[1e-3, 1e-3]))
      >>> try:
      ...     check_fixed_hparams(Config(), Config().hparams(lr=1.0))
      ... except ValueError as e:
      ...     print(str(e)[:64])
      optimizer: HParams.lr differs from the config's (Config.lr=0.001
    """
    values = [getattr(hp, f) for f in FIXED_FIELDS]
    if not any(isinstance(v, jax.core.Tracer) for v in values):
        fields = _ignored(config, dict(zip(FIXED_FIELDS, values, strict=True)))
        if fields:
            raise ValueError(_message(fields, config))
        return
    jax.debug.callback(functools.partial(_warn_once, config), *values)
