"""What an update kind is: :class:`UpdateKind`, plain functions in a record.

An update kind is how one update turns a batch of weights Ψ into new
parameters: one full-batch gradient step (:mod:`~jaxpg.updates.step`), PPO's
epochs of clipped minibatch steps (:mod:`~jaxpg.updates.epochs`), a
natural-gradient trust-region step (:mod:`~jaxpg.updates.trust_region`). An
estimator row (:class:`jaxpg.estimators.Estimator`) names one; the trainer,
the config checks, the learning-rate schedule and the per-batch gradient
(:func:`jaxpg.estimators.batch_gradient`) read everything they need from it,
so a new kind is one new module and no edit elsewhere.

Like an Optax transformation, a kind is a record of pure functions, not a
class hierarchy: build one with ``UpdateKind(name=..., step=..., ...)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple


def _no_check(*args: Any) -> None:
    del args


class UpdateKind(NamedTuple):
    """One way to turn a batch into a parameter update.

    Attributes:
      name: the name ``jaxpg.estimators.register(update=...)`` accepts.
      step: ``(run, hp, carry, batch, key, normalizer) -> (carry, aux)``, traced
        inside the compiled update. ``run`` is the :class:`~jaxpg.runspec.RunSpec`,
        ``hp`` the traced :class:`~jaxpg.config.HParams`, ``carry`` the pair
        ``(params, opt_state)``, ``batch`` a :class:`jaxpg.updates.common.Batch`
        ``[T, B, ...]``, ``key`` a PRNG key, ``normalizer`` from
        :attr:`normalizer`. ``aux`` is a dict of float32 scalars with at least
        ``policy_loss``, ``value_loss``, ``entropy``, ``approx_kl``,
        ``clip_frac``, ``loss`` and ``grad_norm``.
      surrogate: ``(log_prob, old_log_prob, psi, mask, clip_eps, normalizer) ->
        (objective, approx_kl, clip_frac)``, the policy objective whose gradient
        this kind ascends (all arrays one shape; the last two carry no gradient).
      normalizer: ``(mask, episodes) -> divisor`` of :attr:`surrogate` for a batch
        of ``mask``'s shape ``[T, B]`` (``episodes``: each column is one complete
        episode); a Python float or a float32 scalar.
      optimizer_steps: ``config -> int``, the Optax steps one update takes (the
        learning-rate schedule counts them).
      check_config: ``config -> None``; raises a one-line ``ValueError`` naming
        the field for a :class:`~jaxpg.config.Config` this kind cannot run.
        Called from ``Config.__post_init__``, before anything is traced.
      check_run: ``(config, horizon, recurrent) -> None``; the checks that need
        the resolved horizon T and network (:func:`jaxpg.runspec.make_runspec`).
      needs_critic: the step fits a value network (estimators using this kind
        must have ``critic=True``).
    """

    name: str
    step: Callable[..., Any]
    surrogate: Callable[..., Any]
    normalizer: Callable[..., Any]
    optimizer_steps: Callable[[Any], int]
    check_config: Callable[[Any], None] = _no_check
    check_run: Callable[[Any, int, bool], None] = _no_check
    needs_critic: bool = False


def fail(field: str, value: Any, why: str) -> None:
    """Raise the one-line ``ValueError`` every ``Config`` check raises."""
    raise ValueError(f"Config.{field}={value!r} is invalid: {why}")


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def check_minibatches(config: Any) -> None:
    """``num_minibatches`` (and ``grad_chunk``) divide a segment batch ``num_envs·num_steps``.

    For the kinds that split the batch into minibatches; episode batches are
    checked once their horizon is known (:func:`check_minibatch_run`).
    """
    if config.rollout_mode != "segments":
        return
    batch = config.num_envs * config.num_steps
    if batch % config.num_minibatches:
        fail(
            "num_minibatches",
            config.num_minibatches,
            f"must divide num_envs*num_steps = {batch}; allowed: "
            f"{', '.join(str(d) for d in _divisors(batch) if d <= 64)}",
        )
    size = batch // config.num_minibatches
    if config.grad_chunk is not None and size % config.grad_chunk:
        fail(
            "grad_chunk",
            config.grad_chunk,
            f"must divide the minibatch size num_envs*num_steps/num_minibatches"
            f" = {size}, or be None (auto)",
        )


def check_minibatch_run(config: Any, horizon: int, recurrent: bool) -> None:
    """``num_minibatches`` divides the batch ``num_envs·T`` (the envs, for a recurrent net)."""
    if recurrent and config.num_envs % config.num_minibatches:
        raise ValueError(
            f"Config.num_minibatches={config.num_minibatches} is invalid: a recurrent "
            f"network's minibatches are whole sequences, so it must divide "
            f"num_envs={config.num_envs}"
        )
    if (config.num_envs * horizon) % config.num_minibatches:
        raise ValueError(
            f"Config.num_minibatches={config.num_minibatches} is invalid: must divide "
            f"num_envs*T = {config.num_envs}*{horizon} = {config.num_envs * horizon}"
        )


def epochs_times_minibatches(config: Any) -> int:
    """``num_epochs · num_minibatches``: the Optax steps of the minibatch kinds."""
    return config.num_epochs * config.num_minibatches
