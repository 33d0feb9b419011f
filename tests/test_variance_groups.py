"""The variance tools on the group estimators (rloo, grpo, grpo_nostd).

The MDP is a layered random MDP with two start states and episodes of one or
two steps, so groups (which share their start state) are not i.i.d. draws
from p0 and ``grpo``'s 1/|τ_i| and per-group 1/s both act. Exact expectations
come from :func:`jaxpg.variance.tabular.exact_group_mean` (which conditions
on the start state and reuses :func:`jaxpg.groups.exact_group_gradient`);
Monte Carlo tolerances are 4.5 standard errors per component over 3000
independent groups (10 components × 3 estimators: a chance failure < 1e-3),
with a fixed seed.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpg.variance import Estimator, group_means, tabular
from jaxpg.variance.gradients import per_trajectory_gradients, pool_gradients, sample_episodes

G = 4


def _setup():
    # Seed 3 with p_end = 0.5: grpo's exact expectation has cosine 0.82 with ∇J.
    mdp = tabular.random_layered(3, layers=2, p_end=0.5)
    theta = np.random.default_rng(4).normal(size=(mdp.num_states, mdp.num_actions))
    return mdp, theta


def _exact(mdp, theta):
    with jax.enable_x64(True):
        th = jnp.asarray(theta)
        enum = tabular.enumerate_trajectories(mdp)
        grad_j = np.asarray(tabular.exact_gradient(mdp, th))
        means = {
            k: np.asarray(tabular.exact_group_mean(enum, th, Estimator(k, group_size=G)))
            for k in tabular.EXACT_GROUP_KINDS
        }
    return grad_j, means


def test_exact_group_expectations_are_what_the_docs_state():
    mdp, theta = _setup()
    grad_j, means = _exact(mdp, theta)
    np.testing.assert_allclose(means["rloo"], grad_j, atol=1e-12)  # unbiased
    np.testing.assert_allclose(means["grpo_nostd"], (1 - 1 / G) * grad_j, atol=1e-12)
    g = means["grpo"]
    cos = g @ grad_j / (np.linalg.norm(g) * np.linalg.norm(grad_j))
    assert 0.5 < cos < 0.9, cos  # biased in direction, still an ascent direction
    with pytest.raises(ValueError, match="not a group kind"):
        with jax.enable_x64(True):
            tabular.exact_group_mean(
                tabular.enumerate_trajectories(mdp), jnp.asarray(theta), Estimator("reinforce")
            )


def test_sampled_group_gradients_match_the_exact_expectations():
    mdp, theta = _setup()
    _, means = _exact(mdp, theta)
    env = tabular.TabularEnv(mdp)
    th = jnp.asarray(theta, jnp.float32)
    groups_n = 3000
    pool = sample_episodes(
        jax.random.key(21), env, env.default_params, tabular.softmax_policy, th, G * groups_n,
        chunk_size=4096, group_size=G,
    )  # fmt: skip
    ests = [Estimator(k, group_size=G) for k in tabular.EXACT_GROUP_KINDS]
    grads = pool_gradients(tabular.softmax_policy, th, pool, ests, chunk_size=4096)
    for kind, g in grads.items():
        per_group = np.asarray(group_means(g, G), np.float64)
        assert per_group.shape == (groups_n, theta.size)
        mean = per_group.mean(0)
        se = per_group.std(0, ddof=1) / np.sqrt(groups_n)
        np.testing.assert_array_less(np.abs(mean - means[kind]), 4.5 * se + 1e-6, err_msg=kind)


def test_groups_share_their_start_state_and_both_paths_agree():
    mdp, theta = _setup()
    env = tabular.TabularEnv(mdp)
    th = jnp.asarray(theta, jnp.float32)
    args = (jax.random.key(3), env, env.default_params, tabular.softmax_policy, th, 8 * G)
    pool = sample_episodes(*args, group_size=G, chunk_size=8)
    start = np.argmax(np.asarray(pool.obs[0]), -1).reshape(8, G)
    assert np.all(start == start[:, :1])  # one start state per group
    assert len(set(start[:, 0])) == 2  # both start states occur across groups
    actions = np.asarray(pool.action[0]).reshape(8, G)
    assert np.any(actions != actions[:, :1])  # members act independently
    a = per_trajectory_gradients(*args, estimator="grpo", group_size=G, chunk_size=12)
    c = pool_gradients(tabular.softmax_policy, th, pool, [Estimator("grpo", group_size=G)])
    np.testing.assert_allclose(c["grpo"], a, rtol=1e-5, atol=1e-6)


def test_group_options_are_checked():
    mdp, theta = _setup()
    env = tabular.TabularEnv(mdp)
    args = (jax.random.key(0), env, env.default_params, tabular.softmax_policy, theta)
    with pytest.raises(ValueError, match="group_size"):
        per_trajectory_gradients(*args, 8, estimator="rloo", group_size=1)
    with pytest.raises(ValueError, match="multiple of group_size"):
        per_trajectory_gradients(*args, 10, estimator="grpo", group_size=4)
    with pytest.raises(ValueError, match="multiple of group_size"):
        sample_episodes(*args, 10, group_size=4)
    with pytest.raises(ValueError, match="multiple of group_size"):
        group_means(jnp.zeros((10, 3)), 4)
