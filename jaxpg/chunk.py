"""The compiled chunk of a run: a ``lax.scan`` of updates that emits metric rows.

Conventions: a chunk always scans the same number of steps; steps past
``agent.num_updates`` (or after a non-finite update) apply nothing, so one
compiled program serves the whole run and any resume. Each applied update
yields one float32 row ``[update, env_steps, *STREAMED]`` (see
``jaxpg.progress.COLUMNS``); a step that applied nothing yields zeros.

With ``shardings`` (:func:`jaxpg.sharding.state_shardings`) the chunk is
compiled for a state whose env batch is split over devices: the state enters
and leaves with those shardings and is pinned to them after every update;
the metric rows are replicated.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxpg import sharding
from jaxpg.config import HParams
from jaxpg.progress import STREAMED
from jaxpg.update import Agent, TrainState, update


def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack(leaves))


class _Carry(NamedTuple):
    state: TrainState
    bad: jax.Array  # int32: 0, or the 1-based update that went non-finite
    rows: jax.Array  # [log_every, 2 + len(STREAMED)] float32 buffer (callback mode)
    count: jax.Array  # int32 rows in the buffer


def _metric_row(state: TrainState, metrics: dict) -> jax.Array:
    cols = [state.update_step, metrics["env_steps"], *(metrics[k] for k in STREAMED)]
    return jnp.stack([jnp.asarray(c, jnp.float32) for c in cols])


def _chunk_body(agent: Agent, hp: HParams, sink, length: int, shardings, carry: _Carry, i):
    """One scan step: an update (unless the run is over or went non-finite) and
    its metric row (update column 0 where no update was applied); the state is
    then pinned to ``shardings`` (if any)."""
    state, bad = carry.state, carry.bad
    active = jnp.logical_and(state.update_step < agent.num_updates, bad == 0)
    width = carry.rows.shape[1]

    def run(s: TrainState):
        new, metrics = update(agent, s, hp)
        ok = jnp.logical_and(_all_finite(metrics["loss"]), _all_finite(new.params))
        new = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, s)
        row = jnp.where(ok, _metric_row(new, metrics), 0.0)
        return new, jnp.where(ok, 0, s.update_step + 1), row

    def skip(s: TrainState):
        return s, bad, jnp.zeros((width,), jnp.float32)

    state, bad, row = jax.lax.cond(active, run, skip, state)
    state = sharding.constrain(state, shardings)
    if sink is None:
        return carry._replace(state=state, bad=bad), row
    applied = row[0] > 0
    rows = jnp.where(applied, carry.rows.at[carry.count].set(row), carry.rows)
    count = carry.count + applied.astype(jnp.int32)
    flush = jnp.logical_and(count > 0, jnp.logical_or(count == rows.shape[0], i == length - 1))
    jax.lax.cond(flush, lambda: jax.debug.callback(sink, rows, count, ordered=True), lambda: None)
    return _Carry(state, bad, rows, jnp.where(flush, 0, count)), row


def make_chunk(agent: Agent, length: int, sink=None, log_every: int = 20, shardings=None):
    """Jitted ``chunk(state, hp) -> (state, bad, rows)`` running up to ``length`` updates.

    Updates past ``agent.num_updates`` are skipped, so every chunk of a run is
    the same compiled program. ``bad`` is 0, or the 1-based number of the first
    update that produced a non-finite loss or parameter (that update and the
    rest of the chunk are not applied). ``rows`` is ``[length, 2 + len(STREAMED)]``
    float32: ``update, env_steps, *STREAMED`` per scan step, all zero where no
    update was applied.

    With a ``sink``, the rows are also handed to ``sink(rows[log_every, M],
    count)`` from inside the program by ``jax.debug.callback``, once per
    ``log_every`` updates. On XLA:CPU any host callback inside the loop slows
    the whole loop down (see ``scripts/bench_callbacks.py``), so the trainer's
    default streams rows between short chunks instead.

    ``shardings``, a ``TrainState`` of shardings, compiles the chunk for a state
    sharded that way (the env batch over devices); ``None`` leaves placement
    to JAX (one device).
    """
    log_every = max(1, min(log_every, length))

    def chunk(state: TrainState, hp: HParams):
        body = lambda c, i: _chunk_body(agent, hp, sink, length, shardings, c, i)  # noqa: E731
        init = _Carry(
            state,
            jnp.zeros((), jnp.int32),
            jnp.zeros((log_every, 2 + len(STREAMED)), jnp.float32),
            jnp.zeros((), jnp.int32),
        )
        carry, rows = jax.lax.scan(body, init, jnp.arange(length))
        return carry.state, carry.bad, rows

    if shardings is None:
        return jax.jit(chunk)
    replicated = shardings.update_step
    return jax.jit(
        chunk,
        in_shardings=(shardings, replicated),
        out_shardings=(shardings, replicated, replicated),
    )
