"""Estimators on a tiny MDP: sample means match the exact gradient; variances are shown.

Trajectories are drawn with the real rollout (``rollout_episodes``) on a gymnax
environment; per-trajectory gradients use the same surrogate the trainer uses.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpg import envs, estimators, networks, rollout
from tests import tiny_mdp

K = 40_000  # trajectories
THETA = jnp.array([[0.3, -0.2], [0.1, 0.5], [-0.4, 0.2]])
BASELINE = jnp.array([1.2, 0.8, 1.5])  # fixed b(s), independent of the samples


def sample_per_trajectory_grads(estimator, gamma, seed=0):
    key = jax.random.key(seed)
    env = tiny_mdp.TwoStep()
    params = env.default_params
    spec = envs.env_spec(env, params)
    trans = rollout.rollout_episodes(
        key, tiny_mdp.policy_apply, THETA, env, params, spec, K, horizon=2
    )
    values = trans.obs @ BASELINE
    next_values = jnp.zeros_like(values)  # complete episodes: nothing to bootstrap
    w = estimators.weights(
        estimator,
        trans.reward,
        values,
        next_values,
        trans.terminated,
        trans.truncated,
        gamma=gamma,
        lam=1.0,
    )

    def per_traj(theta, obs, action, psi, mask):
        logp = networks.log_prob(tiny_mdp.policy_apply(theta, obs), action)
        return estimators.pg_surrogate(logp, psi, mask, 1.0)

    g = jax.vmap(jax.grad(per_traj), in_axes=(None, 1, 1, 1, 1))(
        THETA, trans.obs, trans.action, w.psi, trans.mask
    )
    return np.asarray(g.reshape(K, -1), np.float64)


def exact_weights(estimator, gamma):
    def fn(rewards, states):
        r0, r1 = rewards
        if estimator == "reinforce":
            ret = r0 + gamma * r1
            return ret, ret
        g1 = r1
        g0 = r0 + gamma * r1
        if estimator == "reward_to_go":
            return g0, g1
        return g0 - BASELINE[states[0]], g1 - BASELINE[states[1]]

    return fn


@pytest.mark.parametrize("estimator", ["reinforce", "reward_to_go", "baseline"])
def test_unbiased_against_exact_gradient(estimator):
    grads = sample_per_trajectory_grads(estimator, gamma=1.0)
    exact = np.asarray(jax.grad(tiny_mdp.exact_objective)(THETA)).reshape(-1)
    mean = grads.mean(0)
    se = grads.std(0, ddof=1) / np.sqrt(K)
    # Rows of θ for the unreachable-from-start pairs have zero gradient; compare
    # where the estimator has spread, and require exact zeros elsewhere.
    live = se > 0
    z = (mean[live] - exact[live]) / se[live]
    assert np.all(np.abs(z) < 4.0), f"z-scores {z} (tolerance 4 SE)"
    np.testing.assert_allclose(mean[~live], exact[~live], atol=1e-6)
    # The exact mean from enumeration is the exact gradient too.
    exact_mean, _ = tiny_mdp.exact_moments(THETA, exact_weights(estimator, 1.0))
    np.testing.assert_allclose(exact_mean, exact, atol=1e-5)


def test_discounted_reinforce_is_gradient_of_discounted_objective():
    # R(τ) = r0 + γ r1 weights every step: an unbiased estimate of ∇J_γ.
    gamma = 0.5
    grads = sample_per_trajectory_grads("reinforce", gamma=gamma, seed=1)
    exact = np.asarray(jax.grad(tiny_mdp.exact_objective)(THETA, gamma)).reshape(-1)
    se = grads.std(0, ddof=1) / np.sqrt(K)
    live = se > 0
    z = (grads.mean(0)[live] - exact[live]) / se[live]
    assert np.all(np.abs(z) < 4.0), z


def test_variance_ordering_matches_enumeration():
    """Empirical tr Cov of each estimator is within 3% of the exact one, and the
    ordering the exact values give on this MDP (a fact about this MDP, not a
    theorem) is reproduced by the samples."""
    exact_tr, sample_tr = {}, {}
    for name in ("reinforce", "reward_to_go", "baseline"):
        _, cov = tiny_mdp.exact_moments(THETA, exact_weights(name, 1.0))
        exact_tr[name] = float(jnp.trace(cov))
        sample_tr[name] = float(np.trace(np.cov(sample_per_trajectory_grads(name, 1.0).T)))
        assert sample_tr[name] == pytest.approx(exact_tr[name], rel=0.03)
    order = sorted(exact_tr, key=exact_tr.get, reverse=True)
    assert order == sorted(sample_tr, key=sample_tr.get, reverse=True)
    # On this MDP: total return > reward-to-go > fixed baseline.
    assert order == ["reinforce", "reward_to_go", "baseline"], exact_tr


def test_normalize_and_masked_mean():
    psi = jnp.array([1.0, 2.0, 3.0, 100.0])
    mask = jnp.array([1.0, 1.0, 1.0, 0.0])
    out = estimators.normalize(psi, mask)
    # mean 2, population std sqrt(2/3) over the three live entries
    np.testing.assert_allclose(out[:3], (psi[:3] - 2.0) / np.sqrt(2 / 3), rtol=1e-5)


def test_ppo_surrogate_gradient_at_old_policy_equals_pg():
    # At θ = θ_old the ratio is 1 (inside the clip range): ∇ of the clipped
    # surrogate equals the per-step mean of ∇log π · Â.
    logits = jnp.array([[0.2, -0.1], [0.5, 0.3], [0.0, 1.0]])
    actions = jnp.array([0, 1, 1])
    adv = jnp.array([1.0, -2.0, 0.5])
    mask = jnp.ones(3)
    old = networks.log_prob(logits, actions)

    def ppo(lg):
        return estimators.ppo_surrogate(networks.log_prob(lg, actions), old, adv, mask, 0.2)[0]

    def pg(lg):
        return estimators.pg_surrogate(networks.log_prob(lg, actions), adv, mask, 3.0)

    np.testing.assert_allclose(jax.grad(ppo)(logits), jax.grad(pg)(logits), atol=1e-6)
