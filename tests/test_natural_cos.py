"""The sampled npg direction against the exact natural gradient (jaxpg.variance.natural_cos)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpg.variance import Estimator, natural_cos, tabular
from tests.test_natural import _exact_natural_direction


def _two_step_as_tabular() -> tabular.TabularMDP:
    """tests/tiny_mdp.TwoStep as a TabularMDP (state 3 is the terminal state)."""
    P = np.zeros((4, 2, 4))
    P[0, 0, 1] = P[0, 1, 2] = 1.0
    P[1:, :, 3] = 1.0
    R = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 1.0], [0.0, 0.0]])
    return tabular.TabularMDP(np.array([1.0, 0, 0, 0]), P, R, np.array([0, 0, 0, 1], bool), 2)


def test_exact_natural_direction_matches_the_hand_written_fisher():
    # test_natural.py writes TwoStep's Fisher by hand (softmax blocks diag(p) − ppᵀ);
    # exact_natural builds it from jacobians over every enumerated step.
    theta = jnp.array([[0.3, -0.2], [0.1, 0.4], [-0.5, 0.2]])
    damping = 0.01
    want = _exact_natural_direction(theta, damping)
    full = jnp.concatenate([theta, jnp.zeros((1, 2))])  # the terminal state's row is unused
    with jax.enable_x64(True):
        got = natural_cos.exact_natural(
            _two_step_as_tabular(), jnp.asarray(full, jnp.float64), damping=damping,
            normalize=False, cg_iters=8,
        )  # fmt: skip
    np.testing.assert_allclose(got.direction[:6], want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got.direction[6:], 0.0, atol=1e-12)
    assert float(got.ceiling) == pytest.approx(1.0, abs=1e-9)  # CG converges (d = 8)


def test_sampled_direction_cosine_rises_to_one_with_the_batch():
    mdp = tabular.random_layered(0, layers=2)  # two start states, episodes of 1 or 2 steps
    theta = np.random.default_rng(1).normal(size=(mdp.num_states, mdp.num_actions))
    out = natural_cos.natural_cosines(jax.random.key(0), mdp, theta, [4, 64, 4096], repeats=32)
    m, se = out.mean, out.se
    assert out.cosines.shape == (3, 32)
    assert m[-1] > 0.99, m
    assert m[-1] - m[0] > 3 * np.hypot(se[0], se[-1]), (m, se)
    assert m[1] - m[0] > 3 * np.hypot(se[0], se[1]), (m, se)
    assert m[-1] - m[1] > 3 * np.hypot(se[1], se[-1]), (m, se)
    # Without normalisation (no batch-mean baseline, no 1/std) the sampled step
    # tends to the same direction.
    raw = natural_cos.natural_cosines(
        jax.random.key(1), mdp, theta, [4096], repeats=8, normalize=False
    )
    assert raw.mean[0] > 0.99, raw.mean


def test_bad_options_are_rejected():
    mdp = tabular.random_layered(0, layers=2)
    theta = np.zeros((mdp.num_states, mdp.num_actions))
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="repeats"):
        natural_cos.natural_cosines(key, mdp, theta, [4], repeats=1)
    with pytest.raises(ValueError, match="batch_sizes"):
        natural_cos.natural_cosines(key, mdp, theta, [0, 4])
    with pytest.raises(ValueError, match="group kind"):
        natural_cos.exact_natural(mdp, jnp.asarray(theta), Estimator("rloo", group_size=2))
    with pytest.raises(ValueError, match="value_table"):
        natural_cos.natural_cosines(key, mdp, theta, [4], estimator=Estimator("baseline"))
