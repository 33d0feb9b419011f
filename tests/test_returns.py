"""Return/advantage scans against the NumPy oracles, plus properties and hand cases."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxpg import returns
from tests import reference

RTOL, ATOL = 1e-5, 1e-4


def random_batch(seed, shape, p_term=0.1, p_trunc=0.1):
    rng = np.random.default_rng(seed)
    r = rng.normal(size=shape).astype(np.float32)
    v = rng.normal(size=shape).astype(np.float32)
    nv = rng.normal(size=shape).astype(np.float32)
    term = rng.random(shape) < p_term
    trunc = rng.random(shape) < p_trunc
    return r, v, nv, term, trunc


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("shape", [(7,), (13, 4), (9, 3, 2)])
@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (1.0, 1.0), (0.9, 0.0)])
def test_gae_matches_oracle(jit, shape, gamma, lam):
    r, v, nv, term, trunc = random_batch(0, shape)
    fn = functools.partial(returns.gae, gamma=gamma, lam=lam)
    fn = jax.jit(fn) if jit else fn
    got = fn(r, v, nv, term, trunc)
    want = reference.gae(r, v, nv, term, trunc, gamma, lam)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("shape", [(7,), (13, 4), (9, 3, 2)])
@pytest.mark.parametrize("gamma", [0.99, 1.0, 0.5])
def test_reward_to_go_matches_oracle(jit, shape, gamma):
    r, _, nv, term, trunc = random_batch(1, shape)
    fn = functools.partial(returns.reward_to_go, gamma=gamma)
    fn = jax.jit(fn) if jit else fn
    got = fn(r, nv, term, trunc)
    want = reference.reward_to_go(r, nv, term, trunc, gamma)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("shape", [(7,), (13, 4), (9, 3, 2)])
@pytest.mark.parametrize("gamma", [0.99, 1.0])
def test_episode_returns_matches_oracle(jit, shape, gamma):
    r, _, _, term, trunc = random_batch(2, shape, p_term=0.2)
    fn = functools.partial(returns.episode_returns, gamma=gamma)
    fn = jax.jit(fn) if jit else fn
    got = fn(r, term, trunc)
    want = reference.episode_returns(r, term, trunc, gamma)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_traced_hyperparameters_do_not_retrace():
    traces = []

    @jax.jit
    def f(r, v, nv, term, trunc, gamma, lam):
        traces.append(1)
        return returns.gae(r, v, nv, term, trunc, gamma=gamma, lam=lam)

    batch = random_batch(3, (5, 2))
    f(*batch, jnp.float32(0.9), jnp.float32(0.8))
    f(*batch, jnp.float32(0.5), jnp.float32(0.1))
    assert len(traces) == 1
    got = f(*batch, jnp.float32(0.5), jnp.float32(0.1))
    np.testing.assert_allclose(got, reference.gae(*batch, 0.5, 0.1), rtol=RTOL, atol=ATOL)


# --- properties --------------------------------------------------------------

seeds = st.integers(0, 2**31 - 1)
gammas = st.floats(0.0, 1.0)
lams = st.floats(0.0, 1.0)


def consistent_batch(seed, shape):
    """Like a real rollout: V(s'_t) equals V(s_{t+1}) unless step t ended an episode."""
    r, v, nv, term, trunc = random_batch(seed, shape)
    done = term | trunc
    nv[:-1] = np.where(done[:-1], nv[:-1], v[1:])
    return r, v, nv, term, trunc


@given(seeds, gammas)
def test_gae_lambda_one_plus_value_is_bootstrapped_return(seed, gamma):
    r, v, nv, term, trunc = consistent_batch(seed, (11, 3))
    adv = returns.gae(r, v, nv, term, trunc, gamma=gamma, lam=1.0)
    g = returns.reward_to_go(r, nv, term, trunc, gamma=gamma)
    np.testing.assert_allclose(adv + v, g, rtol=RTOL, atol=ATOL)


@given(seeds, gammas)
def test_gae_lambda_zero_is_td_error(seed, gamma):
    r, v, nv, term, trunc = random_batch(seed, (11, 3))
    adv = returns.gae(r, v, nv, term, trunc, gamma=gamma, lam=0.0)
    td = returns.td_errors(r, v, nv, term, gamma=gamma)
    np.testing.assert_allclose(adv, td, rtol=RTOL, atol=ATOL)


@given(seeds, gammas, lams)
def test_vector_equals_single_column(seed, gamma, lam):
    r, v, nv, term, trunc = random_batch(seed, (9,))
    col = lambda x: x[:, None]  # noqa: E731
    a = returns.gae(r, v, nv, term, trunc, gamma=gamma, lam=lam)
    b = returns.gae(*map(col, (r, v, nv, term, trunc)), gamma=gamma, lam=lam)
    np.testing.assert_allclose(a, b[:, 0], rtol=RTOL, atol=ATOL)
    g1 = returns.reward_to_go(r, nv, term, trunc, gamma=gamma)
    g2 = returns.reward_to_go(*map(col, (r, nv, term, trunc)), gamma=gamma)
    np.testing.assert_allclose(g1, g2[:, 0], rtol=RTOL, atol=ATOL)
    e1 = returns.episode_returns(r, term, trunc, gamma=gamma)
    e2 = returns.episode_returns(*map(col, (r, term, trunc)), gamma=gamma)
    np.testing.assert_allclose(e1, e2[:, 0], rtol=RTOL, atol=ATOL)


@given(seeds, gammas, lams)
def test_batch_permutation_commutes(seed, gamma, lam):
    batch = random_batch(seed, (8, 5))
    perm = np.random.default_rng(seed).permutation(5)
    permuted = [x[:, perm] for x in batch]
    a = returns.gae(*batch, gamma=gamma, lam=lam)
    b = returns.gae(*permuted, gamma=gamma, lam=lam)
    np.testing.assert_allclose(np.asarray(a)[:, perm], b, rtol=RTOL, atol=ATOL)


# --- hand-worked cases: truncation vs termination ------------------------------


def test_truncation_bootstraps_from_final_observation_value():
    # Two steps; step 1 is a time-limit truncation. V(final obs) = 10, while the
    # reset observation's value (what a naive `values[t+1]` would read) is -99.
    # γ = 0.5: G_1 = 1 + 0.5·10 = 6; G_0 = 1 + 0.5·6 = 4.
    r = jnp.array([1.0, 1.0])
    nv = jnp.array([0.0, 10.0])
    term = jnp.array([False, False])
    trunc = jnp.array([False, True])
    g = returns.reward_to_go(r, nv, term, trunc, gamma=0.5)
    np.testing.assert_allclose(g, [4.0, 6.0])
    # GAE with V ≡ 0 on this episode (values of s_0, s_1), λ = 1: same numbers.
    v = jnp.zeros(2)
    adv = returns.gae(r, v, nv, term, trunc, gamma=0.5, lam=1.0)
    np.testing.assert_allclose(adv, [4.0, 6.0])


def test_truncation_mid_segment_cuts_trace_and_bootstraps():
    # Step 0 truncated (V(final obs) = 4), step 1 starts a new episode with
    # r = 3 and is the last step of the segment with V(s'_1) = 2. γ = 1, λ = 1,
    # V ≡ 0: G_0 = 1 + 4 = 5 (not 1 + G_1); G_1 = 3 + 2 = 5.
    r = jnp.array([1.0, 3.0])
    nv = jnp.array([4.0, 2.0])
    term = jnp.array([False, False])
    trunc = jnp.array([True, False])
    np.testing.assert_allclose(returns.reward_to_go(r, nv, term, trunc, gamma=1.0), [5.0, 5.0])
    adv = returns.gae(r, jnp.zeros(2), nv, term, trunc, gamma=1.0, lam=1.0)
    np.testing.assert_allclose(adv, [5.0, 5.0])


def test_termination_does_not_bootstrap():
    # Same as above but step 1 terminates: V(s'_1) = 10 must be ignored.
    # γ = 0.5: G_1 = 1; G_0 = 1 + 0.5·1 = 1.5.
    r = jnp.array([1.0, 1.0])
    nv = jnp.array([0.0, 10.0])
    term = jnp.array([False, True])
    trunc = jnp.array([False, False])
    np.testing.assert_allclose(returns.reward_to_go(r, nv, term, trunc, gamma=0.5), [1.5, 1.0])
    adv = returns.gae(r, jnp.zeros(2), nv, term, trunc, gamma=0.5, lam=1.0)
    np.testing.assert_allclose(adv, [1.5, 1.0])
    # Both flags at once (terminal state reached exactly at the time limit):
    # termination wins, no bootstrap.
    both = jnp.array([False, True])
    np.testing.assert_allclose(returns.reward_to_go(r, nv, both, both, gamma=0.5), [1.5, 1.0])
