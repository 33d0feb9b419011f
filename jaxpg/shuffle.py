"""Random permutations for minibatch shuffling, without a sort.

``jax.random.permutation`` draws a uniform permutation by sorting random keys
(twice, to make ties negligible). XLA's sort is slow on CPU: on the 2-core
machine of our benchmarks it costs ≈ 0.4 µs per element, which for PPO's four
epochs over a rollout is as much as the network passes themselves.

:func:`permutation` instead evaluates a keyed bijection of ``[0, n)`` at every
index, which is elementwise integer arithmetic (O(n), fully parallel):

* indices are ``k``-bit words with ``2^k >= n``, split into a high half ``L``
  and a low half ``R``;
* ``rounds`` alternating Feistel half-rounds ``L ^= F(R, key_i)`` and
  ``R ^= F(L, key_i)`` (each is its own inverse, so the map is a bijection of
  ``[0, 2^k)``), with ``F`` the MurmurHash3 finaliser of the half xor'd with a
  32-bit round key drawn from ``key``;
* *cycle walking*: an index whose image falls in ``[n, 2^k)`` is mapped again
  until it lands in ``[0, n)``; following the bijection's cycles this way gives a
  bijection of ``[0, n)`` (``2^k < 2n``, so walks are short).

This is the construction of format-preserving encryption (Luby–Rackoff; Black &
Rogaway 2002 for cycle walking) used as a pseudo-random permutation. It is a
bijection for every key and ``n`` (tested), and its positions and pairs are
statistically uniform over keys (tested with chi-square tests), but it cannot
reach every one of the ``n!`` permutations with equal probability (a Feistel
network only makes even permutations of its ``2^k`` words). For PPO minibatches
only the partition into minibatches matters, which this does not restrict;
``Config.minibatch_shuffle="sort"`` selects ``jax.random.permutation`` for
users who want exactly uniform permutations.

``"feistel"`` is the default on every backend, so that a seed gives the same
minibatches on CPU, GPU and TPU; its speed advantage was measured on CPU only
(``scripts/gpu_bench.py`` times it against the sort on an accelerator, docs/gpu.md).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

_U32 = jnp.uint32


def _mix(x: jax.Array) -> jax.Array:
    """MurmurHash3's 32-bit finaliser: a fast bijective avalanche of ``x``."""
    x = x ^ (x >> 16)
    x = x * _U32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * _U32(0xC2B2AE35)
    return x ^ (x >> 16)


def _feistel(x: jax.Array, keys: jax.Array, low_bits: int, high_bits: int) -> jax.Array:
    """The keyed bijection of ``[0, 2^(low_bits+high_bits))`` applied elementwise."""
    low_mask = _U32((1 << low_bits) - 1)
    high_mask = _U32((1 << high_bits) - 1)
    hi = x >> low_bits
    lo = x & low_mask
    for i in range(keys.shape[0]):  # static, a handful of rounds
        if i % 2 == 0:
            hi = hi ^ (_mix(lo ^ keys[i]) & high_mask)
        else:
            lo = lo ^ (_mix(hi ^ keys[i]) & low_mask)
    return (hi << low_bits) | lo


def permutation(key: jax.Array, n: int, rounds: int = 12) -> jax.Array:
    """A pseudo-random permutation of ``[0, n)`` as ``int32[n]``, without sorting.

    Args:
      key: a JAX PRNG key; different keys give independent-looking permutations.
      n: static length, ``1 <= n < 2**31``.
      rounds: Feistel half-rounds (static). 12 (six full rounds): with 8, the
        ordered pairs of tiny ``n`` (6, walked out of an 8-word domain) fail a
        chi-square test of uniformity; from 12 on every ``n`` tested passes.

    Returns:
      ``int32[n]`` containing every index of ``[0, n)`` exactly once.

    Example:
      >>> import jax
      >>> p = permutation(jax.random.key(0), 10)
      >>> sorted(p.tolist()) == list(range(10))
      True
    """
    if not isinstance(n, int) or not 1 <= n < 2**31:
        raise ValueError(f"permutation length n={n!r} must be an integer in [1, 2**31)")
    if rounds < 2:
        raise ValueError(f"rounds={rounds!r} must be >= 2")
    bits = max(2, (n - 1).bit_length())
    low_bits = bits // 2
    high_bits = bits - low_bits
    keys = jax.random.bits(key, (rounds,), _U32)
    idx = jnp.arange(n, dtype=_U32)
    out = _feistel(idx, keys, low_bits, high_bits)
    if n == 1 << bits:
        return out.astype(jnp.int32)
    limit = _U32(n)

    def outside(y):
        return jnp.any(y >= limit)

    def walk(y):
        return jnp.where(y >= limit, _feistel(y, keys, low_bits, high_bits), y)

    return jax.lax.while_loop(outside, walk, out).astype(jnp.int32)
