"""The one scan of updates that every way of training runs.

:func:`scan_updates` is a ``lax.scan`` of :func:`jaxpg.update.update`.
``make_train`` runs it once over the whole run, the CLI dispatches it in short
pieces of the same length (:func:`make_dispatch`), and sweeps ``vmap`` it over
runs; they differ in the options below, never in the loop:

* ``bounded``: updates past ``run.num_updates`` are skipped (``lax.cond``), so
  every dispatch of a run is the same compiled program and a resumed run does
  exactly the computation of an uninterrupted one.
* ``guard``: the hyperparameters must be valid (:meth:`HParams.valid`) and each
  update's loss and new parameters finite; the first update that fails is not
  applied and everything after it is skipped. ``stopped_at`` names it
  (1-based; 0 when the run went through).
* ``shardings``: the state is pinned to them after every update (the env batch
  split over devices, :mod:`jaxpg.sharding`).
* ``hook``: ``hook(hook_carry, metrics, i) -> hook_carry`` runs after each step
  inside the program (the CLI's in-program logging uses it).

Rows of metrics: each step yields a dict of float32 scalars (``update`` is the
1-based update it describes, 0 where nothing was applied). :func:`make_dispatch`
stacks them into a ``[length, len(columns)]`` float32 table for the host; with
a ``sink`` it also sends blocks of rows out from inside the program by
``jax.debug.callback``. The column names come from the caller: compiled code
never imports the host's logging.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxpg import compiling, sharding
from jaxpg.config import HParams
from jaxpg.runspec import RunSpec, TrainState
from jaxpg.update import update


class LoopOutput(NamedTuple):
    state: TrainState  # the state after the last applied update
    stopped_at: jax.Array  # int32: 0, or the 1-based update that failed the guard
    metrics: dict  # per step, each ``[length]`` (``update`` 0 where nothing was applied)
    hook_carry: Any = None  # the hook's final carry


def _all_finite(tree: Any) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


class _Options(NamedTuple):
    bounded: bool
    guard: bool
    shardings: Any
    hook: Callable | None


def _step(run: RunSpec, hp: HParams, opts: _Options, carry, i):
    """One scan step: an update (unless skipped), its metrics, the state pinned, the hook."""
    state, bad, hook_carry = carry
    state, bad, metrics = _update_or_skip(run, hp, opts.bounded, opts.guard, state, bad)
    state = sharding.constrain(state, opts.shardings)
    if opts.hook is not None:
        hook_carry = opts.hook(hook_carry, metrics, i)
    return (state, bad, hook_carry), metrics


def _update_or_skip(run: RunSpec, hp: HParams, bounded: bool, guard: bool, state, bad):
    """An update, kept only where it is allowed (``bounded``) and good (``guard``).

    A refused update is computed and discarded (a select, not a ``lax.cond``):
    it happens only at the end of a run's last dispatch or after a failure, and
    the select needs no second trace of the update to know its metrics' shapes.
    """
    new, metrics = update(run, state, hp)
    metrics = {**metrics, "update": new.update_step.astype(jnp.float32)}
    if not (bounded or guard):
        return new, bad, metrics
    keep = bad == 0
    if bounded:
        keep &= state.update_step < run.num_updates
    if guard:
        good = _all_finite(metrics["loss"]) & _all_finite(new.params) & hp.valid()
        bad = jnp.where(keep & ~good, state.update_step + 1, bad)
        keep &= good
    new = jax.tree.map(lambda a, b: jnp.where(keep, a, b), new, state)
    metrics = jax.tree.map(lambda m: jnp.where(keep, m, jnp.zeros_like(m)), metrics)
    return new, bad, metrics


def scan_updates(
    run: RunSpec,
    state: TrainState,
    hp: HParams,
    length: int,
    *,
    bounded: bool = False,
    guard: bool = False,
    shardings: Any = None,
    hook: Callable | None = None,
    hook_init: Any = None,
) -> LoopOutput:
    """Run ``length`` updates from ``state`` in one ``lax.scan`` (options: module docstring).

    Args:
      run: the run's :class:`~jaxpg.runspec.RunSpec`.
      state: the state to continue from.
      hp: traced hyperparameters.
      length: scan steps.
      bounded: skip updates past ``run.num_updates``.
      guard: refuse invalid hyperparameters and stop at the first non-finite update.
      shardings: a ``TrainState`` of shardings to pin the state to, or ``None``.
      hook: ``(hook_carry, metrics, i) -> hook_carry``, run after every step.
      hook_init: the hook's initial carry.

    Returns:
      :class:`LoopOutput`; ``metrics`` leaves are ``[length]``.
    """
    opts = _Options(bounded, guard, shardings, hook)
    body = lambda c, i: _step(run, hp, opts, c, i)  # noqa: E731
    init = (state, jnp.zeros((), jnp.int32), hook_init)
    (state, bad, hook_carry), metrics = jax.lax.scan(body, init, jnp.arange(length))
    return LoopOutput(state, bad, metrics, hook_carry)


def metric_rows(metrics: dict, columns: Sequence[str]) -> jax.Array:
    """Stack ``metrics`` into float32 rows, one column per name in ``columns``.

    Args:
      metrics: ``{name: [...]}`` with equal shapes; must hold ``"update"``.
      columns: the column names, in order.

    Returns:
      ``[..., len(columns)]`` float32; a column the run does not produce is NaN.
    """
    shape = metrics["update"].shape
    cols = [
        jnp.asarray(metrics[c], jnp.float32) if c in metrics else jnp.full(shape, jnp.nan)
        for c in columns
    ]
    return jnp.stack(cols, axis=-1)


class _SinkCarry(NamedTuple):
    rows: jax.Array  # [log_every, M] buffer
    count: jax.Array  # int32 rows in it


def _send_row(sink: Callable, columns, length: int, carry: _SinkCarry, metrics: dict, i):
    """Buffer one row; hand the buffer to ``sink`` when full or at the last step."""
    row = metric_rows(metrics, columns)
    applied = row[0] > 0
    rows = jnp.where(applied, carry.rows.at[carry.count].set(row), carry.rows)
    count = carry.count + applied.astype(jnp.int32)
    flush = (count > 0) & ((count == rows.shape[0]) | (i == length - 1))
    jax.lax.cond(flush, lambda: jax.debug.callback(sink, rows, count, ordered=True), lambda: None)
    return _SinkCarry(rows, jnp.where(flush, 0, count))


def make_dispatch(
    run: RunSpec,
    length: int,
    columns: Sequence[str],
    *,
    sink: Callable | None = None,
    log_every: int = 20,
    shardings: Any = None,
):
    """Jitted ``dispatch(state, hp) -> (state, stopped_at, rows[length, len(columns)])``.

    One bounded, guarded piece of a run (``columns[0]`` must be ``"update"``):
    every dispatch of a run is the same program, updates past the end are
    skipped, rows of skipped steps are zero. With a ``sink``, rows also go to
    ``sink(rows[log_every, M], count)`` from inside the program once per
    ``log_every`` updates (on XLA:CPU a host callback inside the loop slows the
    loop down; see ``scripts/bench_callbacks.py``).

    Args:
      run: the run's :class:`~jaxpg.runspec.RunSpec`.
      length: updates per dispatch.
      columns: metric names of the rows (:func:`metric_rows`), ``"update"`` first.
      sink: optional host callback ``(rows [log_every, M] float32, count int32)``;
        only the first ``count`` rows are filled.
      log_every: updates per ``sink`` call, clipped to ``[1, length]``.
      shardings: a ``TrainState`` of shardings to compile the dispatch for (the
        state split that way, ``hp`` and outputs replicated), or ``None``.

    Returns:
      The jitted ``dispatch``: ``stopped_at`` is an int32 scalar (0, or the
      1-based update that failed the guard) and ``rows`` is
      ``[length, len(columns)]`` float32.

    Raises:
      ValueError: ``columns[0]`` is not ``"update"``.
    """
    if columns[0] != "update":
        raise ValueError(f"make_dispatch: columns[0] must be 'update', got {columns[0]!r}")
    log_every = max(1, min(log_every, length))
    columns = tuple(columns)

    hook = hook_init = None
    if sink is not None:
        hook = lambda c, m, i: _send_row(sink, columns, length, c, m, i)  # noqa: E731
        hook_init = _SinkCarry(
            jnp.zeros((log_every, len(columns)), jnp.float32), jnp.zeros((), jnp.int32)
        )

    def dispatch(state: TrainState, hp: HParams):
        out = scan_updates(
            run, state, hp, length, bounded=True, guard=True, shardings=shardings,
            hook=hook, hook_init=hook_init,
        )  # fmt: skip
        return out.state, out.stopped_at, metric_rows(out.metrics, columns)

    if shardings is None:
        return compiling.jit(dispatch)
    replicated = shardings.update_step
    return compiling.jit(
        dispatch,
        in_shardings=(shardings, replicated),
        out_shardings=(shardings, replicated, replicated),
    )
