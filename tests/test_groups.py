"""Group estimators (rloo, grpo, grpo_nostd): rollouts in groups and their exact expectations.

On TwoStep (tests/tiny_mdp.py) every trajectory is enumerable, so the expectation
of a group estimator is computed exactly over all 4ᴳ groups
(:func:`jaxpg.groups.exact_group_gradient`) and compared with (a) the statements
in jaxpg.estimators' docs and (b) the mean of the trainer's own gradient
(group rollout → weights → surrogate gradient at θ_old) over many batches,
within 4.5 standard errors per component.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpg
from jaxpg import envs as jenvs
from jaxpg import estimators, groups
from tests import tiny_mdp

THETA = jnp.array([[0.3, -0.2], [0.1, 0.4], [-0.5, 0.2]])
G = 4
# γ = 0.9 gives the four trajectories four different returns (1, 2.8, 2.7, 0.9). With
# γ = 1 there are only two (1 and 3), and with two possible returns and one start
# state every group weighting is a positive multiple of ∇J (see jaxpg.estimators).
GAMMA = 0.9


def _enumerate(theta):
    logp_fn = lambda th, s, a: jax.nn.log_softmax(th, axis=-1)[s, a]  # noqa: E731
    grad_logp = jax.grad(logp_fn)
    probs, grads, rets = [], [], []
    logp = jax.nn.log_softmax(theta, axis=-1)
    for (s0, s1), (a0, a1), (r0, r1) in tiny_mdp.trajectories():
        probs.append(jnp.exp(logp[s0, a0] + logp[s1, a1]))
        grads.append((grad_logp(theta, s0, a0) + grad_logp(theta, s1, a1)).reshape(-1))
        rets.append(r0 + GAMMA * r1)
    return jnp.stack(probs), jnp.stack(grads), jnp.stack(rets), jnp.full((4,), 2.0)


def _exact(kind: str, per_length: bool):
    probs, grads, rets, lengths = _enumerate(THETA)
    fn = lambda r: estimators.group_baseline(r, G, kind)  # noqa: E731
    return groups.exact_group_gradient(probs, grads, rets, lengths, G, fn, per_length)


def test_group_baseline_hand_worked():
    r = jnp.array([1.0, 2.0, 6.0, 3.0, 3.0, 3.0])
    # Group 1: mean 3, deviations (−2, −1, 3), sample std √((4+1+9)/2) = √7.
    np.testing.assert_allclose(estimators.group_baseline(r, 3, "mean"), [-2, -1, 3, 0, 0, 0])
    std = estimators.group_baseline(r, 3, "std")
    np.testing.assert_allclose(std[:3], np.array([-2, -1, 3]) / np.sqrt(7.0), rtol=1e-5)
    np.testing.assert_allclose(std[3:], 0.0)  # a group with no spread teaches nothing
    # Leave-one-out is G/(G−1) times the mean-baseline weight: 3/2 · (−2, −1, 3).
    np.testing.assert_allclose(estimators.group_baseline(r, 3, "loo")[:3], [-3, -1.5, 4.5])


def test_exact_expectations_are_what_the_docs_state():
    grad_j = jax.grad(tiny_mdp.exact_objective)(THETA, GAMMA).reshape(-1)
    # rloo: unbiased.
    np.testing.assert_allclose(_exact("loo", False), grad_j, rtol=1e-5, atol=1e-6)
    # grpo_nostd (mean baseline including R_i): exactly (1 − 1/G) ∇J.
    np.testing.assert_allclose(_exact("mean", False), (1 - 1 / G) * grad_j, rtol=1e-5, atol=1e-6)
    # grpo: not a multiple of ∇J (the std reweights groups), so biased in direction.
    std = _exact("std", True)
    cos = float(std @ grad_j / (jnp.linalg.norm(std) * jnp.linalg.norm(grad_j)))
    assert cos < 0.995, cos
    assert cos > 0.5, cos  # still an ascent direction here


def _sampled_gradients(estimator: str, num_envs: int, reps: int):
    env, env_params = jenvs.make_env(tiny_mdp.TwoStep())
    spec = jenvs.env_spec(env, env_params)

    def one(key):
        trans = groups.rollout_groups(
            key, tiny_mdp.policy_apply, THETA, env, env_params, spec, num_envs, 2, G
        )
        # The public per-batch gradient: the trainer's weights and surrogate (grpo's
        # clipped ratio, whose gradient at θ_old is the per-step mean; rloo's (1/N) Σ_i Σ_t).
        out = estimators.batch_gradient(
            estimator, tiny_mdp.policy_apply, THETA, trans.obs, trans.action, trans.log_prob,
            trans.reward, trans.terminated, trans.truncated, mask=trans.mask,
            gamma=GAMMA, group_size=G,
        )  # fmt: skip
        return out.gradient.reshape(-1)

    return jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(11), reps))


@pytest.mark.parametrize(
    "estimator,kind,per_length",
    [("rloo", "loo", False), ("grpo_nostd", "mean", False), ("grpo", "std", True)],
)
def test_trainer_gradient_matches_the_exact_expectation(estimator, kind, per_length):
    grads = _sampled_gradients(estimator, num_envs=32, reps=400)
    mean = jnp.mean(grads, 0)
    se = jnp.std(grads, 0, ddof=1) / np.sqrt(grads.shape[0])
    exact = _exact(kind, per_length)
    # Seeded; 4.5 standard errors per component (6 components).
    np.testing.assert_array_less(np.abs(mean - exact), 4.5 * se + 1e-6)


def test_groups_share_their_start_state():
    env, params = jenvs.make_env("CartPole-v1")
    carry = groups.reset_groups(jax.random.key(0), env, params, 12, 4)
    obs = np.asarray(carry.obs).reshape(3, 4, -1)
    assert np.all(obs == obs[:, :1])  # the same state within a group
    assert not np.allclose(obs[0, 0], obs[1, 0])  # different start states across groups
    with pytest.raises(ValueError, match="group_size"):
        groups.reset_groups(jax.random.key(0), env, params, 10, 4)


def test_config_checks_group_fields():
    with pytest.raises(ValueError, match="group_size"):
        jaxpg.Config(estimator="rloo", num_envs=10, group_size=4)
    with pytest.raises(ValueError, match="group_size"):
        jaxpg.Config(estimator="grpo", num_envs=8, group_size=1)
    with pytest.raises(ValueError, match="shared_torso"):
        jaxpg.Config(estimator="trpo", shared_torso=True)
    with pytest.raises(ValueError, match="delta"):
        jaxpg.Config(estimator="trpo", delta=0.0)
