"""The sort-free minibatch permutation: a bijection for every n and key, and
statistically uniform over keys (chi-square tests at p = 1e-4 on fixed keys, so
they cannot flake)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpg
from jaxpg import update
from jaxpg.runspec import make_runspec
from jaxpg.shuffle import permutation


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 31, 64, 100, 1000, 4097, 65536, 100_003])
def test_is_a_permutation(n):
    for seed in range(3):
        p = np.asarray(permutation(jax.random.key(seed), n))
        assert p.dtype == np.int32
        np.testing.assert_array_equal(np.sort(p), np.arange(n))


def test_keys_give_different_permutations_and_jit_matches_eager():
    a = permutation(jax.random.key(0), 1000)
    b = permutation(jax.random.key(1), 1000)
    assert not np.array_equal(a, b)
    c = jax.jit(permutation, static_argnums=1)(jax.random.key(0), 1000)
    np.testing.assert_array_equal(a, c)


def test_bad_length_raises():
    with pytest.raises(ValueError, match="n=0"):
        permutation(jax.random.key(0), 0)


def _chi2(counts):
    counts = np.asarray(counts, float).ravel()
    expected = counts.sum() / counts.size
    return float(((counts - expected) ** 2 / expected).sum())


def _many(n, draws):
    keys = jax.random.split(jax.random.key(123), draws)
    return np.asarray(jax.vmap(lambda k: permutation(k, n))(keys))


def test_positions_and_pairs_are_uniform_small_n():
    # n = 6 walks cycles out of the 8-word domain: the hardest case for uniformity.
    perms = _many(6, 12_000)
    first = np.bincount(perms[:, 0], minlength=6)
    assert _chi2(first) < 25.74  # df 5
    where0 = np.argmax(perms == 0, axis=1)
    assert _chi2(np.bincount(where0, minlength=6)) < 25.74
    pairs = np.zeros((6, 6))
    np.add.at(pairs, (perms[:, 0], perms[:, 1]), 1)
    off = pairs[~np.eye(6, dtype=bool)]
    assert pairs.trace() == 0 and _chi2(off) < 66.15  # df 29


def test_positions_are_uniform_large_n():
    n, draws = 1000, 4000
    perms = _many(n, draws)
    # Where does index 0 land, and index 999? Each in 10 equal bins of positions.
    for item in (0, n - 1):
        pos = np.argmax(perms == item, axis=1)
        assert _chi2(np.bincount(pos * 10 // n, minlength=10)) < 33.72  # df 9
    # Neighbouring inputs land independently: no correlation of their positions.
    inv = np.argsort(perms, axis=1)
    r = np.corrcoef(inv[:, 10], inv[:, 11])[0, 1]
    assert abs(r) < 4 / np.sqrt(draws)


def test_minibatch_co_membership_matches_uniform_shuffle():
    # Two items share a minibatch of size n/m with probability (n/m − 1)/(n − 1).
    n, m, draws = 64, 4, 20_000
    perms = _many(n, draws)
    inv = np.argsort(perms, axis=1)
    same = (inv[:, 3] // (n // m)) == (inv[:, 40] // (n // m))
    p = (n // m - 1) / (n - 1)
    assert abs(same.mean() - p) < 4 * np.sqrt(p * (1 - p) / draws)


@pytest.mark.parametrize("how", ["feistel", "sort"])
def test_ppo_epoch_uses_every_sample_once(how):
    cfg = jaxpg.Config(num_envs=4, num_steps=6, num_minibatches=3, minibatch_shuffle=how)
    agent = make_runspec(cfg)
    n = 24
    flat = update.Batch(
        jnp.arange(n, dtype=jnp.float32)[:, None].repeat(4, 1),
        jnp.zeros(n, jnp.int32),
        jnp.zeros(n),
        jnp.zeros(n),
        jnp.zeros(n),
        jnp.ones(n),
    )
    shuffled = update._minibatches(agent, flat, jax.random.key(0))
    obs = np.asarray(shuffled.obs[..., 0])
    assert obs.shape == (3, 8)
    np.testing.assert_array_equal(np.sort(obs.ravel()), np.arange(n))
