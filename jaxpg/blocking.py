"""Cache-sized gradient chunks on CPU: big batches processed in pieces that fit in cache.

A "gradient chunk" here is always a piece of one minibatch (``Config.grad_chunk``);
it changes how a result is computed, never the result (up to float rounding).

On XLA:CPU a 64-wide MLP's forward/backward over 131,072 samples runs about
1.5× faster as the mean of 8,192-sample chunks, and the critic's pass over a big
rollout about 3× faster, because the activations stay in cache. GPUs and TPUs
want the big matmuls, and a sharded run already splits the batch, so automatic
chunking happens only on the CPU backend, for segment rollouts, above
:data:`CHUNK_ABOVE` samples. The figures come from ``scripts/benchmark.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

#: Samples per automatic chunk, and the batch size above which chunking starts.
CPU_CHUNK = 8192
CHUNK_ABOVE = 16384


def auto_chunks(run: Any, n: int) -> bool:
    """Whether a batch of ``n`` samples of ``run`` is chunked automatically.

    True only for segment rollouts of an unsharded run on the CPU backend with
    ``n > CHUNK_ABOVE``.

    Args:
      run: the run's ``RunSpec`` (reads ``config.rollout_mode`` and ``mesh``).
      n: samples in the batch.

    Returns:
      ``True`` when the batch is processed in :data:`CPU_CHUNK`-sized pieces.
    """
    return (
        run.config.rollout_mode == "segments"
        and run.mesh is None
        and jax.default_backend() == "cpu"
        and n > CHUNK_ABOVE
    )


def grad_chunk_size(run: Any, minibatch: int) -> int:
    """Samples per gradient chunk of a minibatch of ``minibatch`` (itself: no chunking).

    ``Config.grad_chunk`` when set; otherwise the largest divisor of ``minibatch``
    up to :data:`CPU_CHUNK` when :func:`auto_chunks` applies (none below
    ``CPU_CHUNK / 8``: no chunking).

    Args:
      run: the run's ``RunSpec``.
      minibatch: samples per minibatch.

    Returns:
      The chunk size, an ``int`` that divides ``minibatch`` (``minibatch`` itself
      for no chunking) unless ``Config.grad_chunk`` sets it.
    """
    if run.config.grad_chunk is not None:
        return run.config.grad_chunk
    if not auto_chunks(run, minibatch):
        return minibatch
    fits = (d for d in range(CPU_CHUNK, CPU_CHUNK // 8 - 1, -1) if minibatch % d == 0)
    return next(fits, minibatch)


def chunked_apply(run: Any, fn: Callable, x: jax.Array) -> Any:
    """``fn(x)`` for a per-sample ``fn`` over ``x[N, ...]``, in cache-sized chunks on CPU.

    ``x`` is padded with zeros to a whole number of chunks and the padding dropped,
    so any ``N`` works; without automatic chunking it is just ``fn(x)``.

    Args:
      run: the run's ``RunSpec`` (decides whether to chunk, see :func:`auto_chunks`).
      fn: ``x[M, ...] -> pytree of [M, ...]``; rows must not depend on each other.
      x: ``[N, ...]`` input array.

    Returns:
      ``fn(x)``: a pytree of ``[N, ...]`` leaves.
    """
    n = x.shape[0]
    if not auto_chunks(run, n):
        return fn(x)
    k = -(-n // CPU_CHUNK)
    padded = jnp.concatenate([x, jnp.zeros((k * CPU_CHUNK - n,) + x.shape[1:], x.dtype)])
    out = jax.lax.map(fn, padded.reshape((k, CPU_CHUNK) + x.shape[1:]))
    return jax.tree.map(lambda y: y.reshape((k * CPU_CHUNK,) + y.shape[2:])[:n], out)


def chunked_value_and_grad(
    grad_fn: Callable, params: Any, batch: Any, chunk: int | None = None
) -> Any:
    """``grad_fn(params, batch)``, or the mean of it over equal chunks of ``chunk`` samples.

    Exact (up to rounding) when every term of the loss is a mean over the
    batch's samples, as PPO's is: the mean of equal chunks' values and gradients
    is then the whole batch's.

    Args:
      grad_fn: ``(params, batch) -> ((loss, aux), grads)``.
      params: the parameters.
      batch: a pytree of ``[N, ...]`` leaves; ``chunk`` must divide ``N``.
      chunk: samples per chunk; ``None`` or ``>= N`` means one call.

    Returns:
      ``((loss, aux), grads)`` as ``grad_fn`` returns them; with chunks, every
      leaf is the mean over the ``N // chunk`` chunks.
    """
    n = jax.tree.leaves(batch)[0].shape[0]
    if chunk is None or chunk >= n:
        return grad_fn(params, batch)
    k = n // chunk
    chunks = jax.tree.map(lambda x: x.reshape((k, chunk) + x.shape[1:]), batch)

    def body(acc, b):
        return jax.tree.map(jnp.add, acc, grad_fn(params, b)), None

    first = jax.tree.map(lambda x: x[0], chunks)
    shapes = jax.eval_shape(grad_fn, params, first)
    zero = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
    total, _ = jax.lax.scan(body, zero, chunks)
    return jax.tree.map(lambda x: x / k, total)
