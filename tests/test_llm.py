"""The LLM fine-tuning estimators (jaxpg.llm): exact expectations and off-policy behaviour.

As tests/test_groups.py: on TwoStep (tests/tiny_mdp.py) every group of trajectories is
enumerable, so each estimator's expectation at θ_old is computed exactly
(:func:`jaxpg.groups.exact_group_gradient`) and compared with (a) the figure its
module's docstring states and (b) the mean of the trainer's own gradient (group rollout
→ weights → surrogate, via :func:`jaxpg.estimators.batch_gradient`) over many seeded
batches, within 4.5 standard errors per component.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpg import envs as jenvs
from jaxpg import estimators, groups
from jaxpg.llm import cispo, dapo, gspo, kl
from tests import tiny_mdp
from tests.test_groups import GAMMA, THETA, _enumerate, _exact, _sampled_gradients


def _cos_len(g, ref):
    return float(g @ ref / (jnp.linalg.norm(g) * jnp.linalg.norm(ref))), float(
        jnp.linalg.norm(g) / jnp.linalg.norm(ref)
    )


def test_exact_expectations_are_what_the_docstrings_state():
    grad_j = jax.grad(tiny_mdp.exact_objective)(THETA, GAMMA).reshape(-1)
    grpo = _exact("std", True)
    cispo_e = _exact("std", False)  # the token mean: no 1/|τ_i|
    # Every TwoStep episode has 2 steps, so the token mean is exactly 2x grpo's.
    np.testing.assert_allclose(cispo_e, 2.0 * grpo, rtol=1e-5, atol=1e-7)
    cos, length = _cos_len(cispo_e, grad_j)
    assert round(cos, 3) == 0.992 and round(length, 2) == 0.79, (cos, length)
    cos, length = _cos_len(grpo, grad_j)  # gspo's expectation is grpo's
    assert round(cos, 3) == 0.992 and round(length, 2) == 0.40, (cos, length)


@pytest.mark.parametrize("estimator,per_length", [("cispo", False), ("gspo", True)])
def test_trainer_gradient_matches_the_exact_expectation(estimator, per_length):
    grads = _sampled_gradients(estimator, num_envs=32, reps=400)
    mean = jnp.mean(grads, 0)
    se = jnp.std(grads, 0, ddof=1) / np.sqrt(grads.shape[0])
    # Seeded; 4.5 standard errors per component (6 components).
    np.testing.assert_array_less(np.abs(mean - _exact("std", per_length)), 4.5 * se + 1e-6)


def test_gspo_gradient_is_grpos_at_theta_old():
    """Not only in expectation: on every batch, at θ_old, the two gradients agree."""
    g_gspo = _sampled_gradients("gspo", num_envs=8, reps=4)
    g_grpo = _sampled_gradients("grpo", num_envs=8, reps=4)
    np.testing.assert_allclose(g_gspo, g_grpo, rtol=1e-5, atol=1e-6)


def test_cispo_clipped_tokens_keep_their_gradient():
    # Token 0: ρ = 0.9/0.5 = 1.8 > 1 + ε with Â > 0. PPO's min-clip gives it no gradient;
    # CISPO's gives ∇log π times the clipped weight 1.2 (over 2 tokens: 0.6).
    lp = jnp.log(jnp.array([0.9, 0.5]))
    old = jnp.log(jnp.array([0.5, 0.5]))
    adv, m = jnp.ones(2), jnp.ones(2)
    g_ppo = jax.grad(lambda x: estimators.ppo_surrogate(x, old, adv, m, 0.2)[0])(lp)
    g_cispo = jax.grad(lambda x: cispo.cispo_objective(x, old, adv, m, 0.2)[0])(lp)
    np.testing.assert_allclose(g_ppo, [0.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(g_cispo, [0.6, 0.5], rtol=1e-5)
    # Without a lower bound a tiny ratio keeps its own weight; with ε_low = 0.2 it is 0.8.
    small = jnp.log(jnp.array([0.1, 0.5]))
    g_free = jax.grad(lambda x: cispo.cispo_objective(x, old, adv, m, 0.2)[0])(small)
    g_low = jax.grad(lambda x: cispo.cispo_objective(x, old, adv, m, 0.2, 0.2)[0])(small)
    np.testing.assert_allclose(g_free, [0.1, 0.5], rtol=1e-5)  # ρ = 0.2, halved
    np.testing.assert_allclose(g_low, [0.4, 0.5], rtol=1e-5)
    frac = cispo.cispo_objective(small, old, adv, m, 0.2, 0.2)[2]
    assert float(frac) == 0.5
    with pytest.raises(ValueError, match="eps_low"):
        cispo.kind(eps_low=1.5)


def test_gspo_clips_whole_sequences():
    # Column 0: token ratios 2 and 1/2 → s = 1 (kept, though each token is far out).
    # Column 1: ratios 1.21 and 1 → s = 1.1 > 1 + ε (clipped, Ψ > 0: no gradient).
    old = jnp.log(jnp.full((2, 2), 0.4))
    lp = jnp.log(jnp.array([[0.8, 0.484], [0.2, 0.4]]))
    psi, m = jnp.ones((2, 2)), jnp.ones((2, 2))
    np.testing.assert_allclose(gspo.sequence_ratio(lp, old, m), [1.0, 1.1], rtol=1e-5)
    obj, _, frac = gspo.gspo_objective(lp, old, psi, m, 0.05)
    g = jax.grad(lambda x: gspo.gspo_objective(x, old, psi, m, 0.05)[0])(lp)
    # Column 0's two tokens each carry s·ψ/4, and ∂s/∂log π_t = s/2 (a mean over 2
    # steps): ∂/∂log π_t = 2 · (1/4) · (s/2) = 0.25 on each of its tokens.
    np.testing.assert_allclose(g[:, 0], [0.25, 0.25], rtol=1e-5)
    np.testing.assert_allclose(g[:, 1], [0.0, 0.0], atol=1e-7)
    assert float(frac) == 0.5  # the tokens of the clipped sequence
    np.testing.assert_allclose(obj, (1.0 * 2 + 1.05 * 2) / 4, rtol=1e-5)


def test_gspo_needs_whole_episode_minibatches():
    import jaxpg

    with pytest.raises(ValueError, match="num_minibatches"):
        jaxpg.Config(estimator="gspo", num_envs=6, group_size=2, num_minibatches=4)


def _dapo_sampled_gradients(group_size, num_envs, reps):
    env, env_params = jenvs.make_env(tiny_mdp.TwoStep())
    spec = jenvs.env_spec(env, env_params)

    def one(key):
        trans = groups.rollout_groups(
            key, tiny_mdp.policy_apply, THETA, env, env_params, spec, num_envs, 2, group_size
        )
        out = estimators.batch_gradient(
            "dapo", tiny_mdp.policy_apply, THETA, trans.obs, trans.action, trans.log_prob,
            trans.reward, trans.terminated, trans.truncated, mask=trans.mask,
            gamma=GAMMA, group_size=group_size,
        )  # fmt: skip
        return out.gradient.reshape(-1)

    return jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(5), reps))


def test_dapo_expectation_is_conditional_on_spread():
    """(1 − (1 − p)^M)/p · E[g], checked against all 4⁴ batches of M = 2 groups of 2."""
    probs, grads, rets, lengths = _enumerate(THETA)
    g2, m = 2, 2
    num_envs = g2 * m
    std = lambda r: estimators.group_baseline(r, g2, "std")  # noqa: E731
    e_g = groups.exact_group_gradient(probs, grads, rets, lengths, g2, std)
    fn = lambda r: dapo.dynamic_sampling_weights(r, g2)  # noqa: E731
    # The whole batch as one "group" of N = 4: E[(1/N) Σ_i ∇log p(τ_i) Ψ_i·N/|K|].
    direct = groups.exact_group_gradient(probs, grads, rets, lengths, num_envs, fn)
    p = 1.0 - float(jnp.sum(probs**g2))  # no spread: both episodes are one τ
    factor = (1.0 - (1.0 - p) ** m) / p
    np.testing.assert_allclose(direct, factor * e_g, rtol=1e-4, atol=1e-6)
    assert factor > 1.1, factor  # no spread is common here (1 − p ≈ 0.3)
    grads_s = _dapo_sampled_gradients(g2, num_envs, reps=1000)
    mean = jnp.mean(grads_s, 0)
    se = jnp.std(grads_s, 0, ddof=1) / np.sqrt(grads_s.shape[0])
    np.testing.assert_array_less(np.abs(mean - direct), 4.5 * se + 1e-6)  # seeded, 4.5 SE
    # ... and distinguishably not the unconditional E[g] (the masking matters).
    assert float(jnp.max(jnp.abs(mean - e_g) / se)) > 4.5


def test_dapo_weights_without_spread_and_overlong():
    r = jnp.array([2.0, 2.0, 5.0, 5.0])  # no group has spread: no weight, no NaN
    np.testing.assert_array_equal(dapo.dynamic_sampling_weights(r, 2), 0.0)
    # An episode of 3 steps (r = 1 each) and one of 1 step, L_max = 3, L_cache = 2:
    # penalties −0.5 and 0, so returns 3 − 0.5 = 2.5 and 1; mean length 2.
    reward = jnp.array([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    term = jnp.array([[False, True], [False, False], [True, False]])
    w = dapo.make_weights(3, 2)(
        reward, reward, reward, term, jnp.zeros_like(term), gamma=1.0, lam=1.0, group_size=2
    )
    s = np.sqrt(((2.5 - 1.75) ** 2 + (1.0 - 1.75) ** 2) / 1)  # sample std of (2.5, 1)
    np.testing.assert_allclose(w.psi[0], np.array([0.75, -0.75]) / s * 2.0, rtol=1e-5)
    with pytest.raises(ValueError, match="cache"):
        dapo.make_weights(3, 5)
    with pytest.raises(ValueError, match="eps_high"):
        dapo.kind(0.0)


def _reinforce_pp_exact(theta, num_envs):
    """E over all 4ᴺ batches of (1/(2N)) Σ_i Σ_t ∇log π(a_it|s_it)·(G_it − μ̂)/σ̂."""
    logp_fn = lambda th, s, a: jax.nn.log_softmax(th, axis=-1)[s, a]  # noqa: E731
    grad_logp = jax.grad(logp_fn)
    logp = jax.nn.log_softmax(theta, axis=-1)
    probs, step_grads, rtg = [], [], []
    for (s0, s1), (a0, a1), (r0, r1) in tiny_mdp.trajectories():
        probs.append(jnp.exp(logp[s0, a0] + logp[s1, a1]))
        step_grads.append(jnp.stack([grad_logp(theta, s0, a0), grad_logp(theta, s1, a1)]))
        rtg.append(jnp.array([r0 + GAMMA * r1, r1]))
    probs, step_grads, rtg = jnp.stack(probs), jnp.stack(step_grads), jnp.stack(rtg)
    step_grads = step_grads.reshape(4, 2, -1)  # [K, T, P]
    combos = jnp.array(list(itertools.product(range(4), repeat=num_envs)))
    p = jnp.prod(probs[combos], axis=1)

    def batch(c):
        psi = estimators.normalize(rtg[c], jnp.ones((num_envs, 2)))  # the trainer's rule
        return jnp.einsum("nt,ntp->p", psi, step_grads[c]) / (2 * num_envs)

    return p @ jax.vmap(batch)(combos)


def test_reinforce_pp_expectation_by_enumeration():
    n = 4
    exact = _reinforce_pp_exact(THETA, n)
    grad_j = jax.grad(tiny_mdp.exact_objective)(THETA, GAMMA).reshape(-1)
    cos, length = _cos_len(exact, grad_j)
    assert round(cos, 3) == 0.988 and round(length, 2) == 0.49, (cos, length)
    env, env_params = jenvs.make_env(tiny_mdp.TwoStep())
    spec = jenvs.env_spec(env, env_params)

    def one(key):
        trans = groups.rollout_groups(
            key, tiny_mdp.policy_apply, THETA, env, env_params, spec, n, 2, 1
        )
        out = estimators.batch_gradient(
            "reinforce_pp", tiny_mdp.policy_apply, THETA, trans.obs, trans.action,
            trans.log_prob, trans.reward, trans.terminated, trans.truncated, mask=trans.mask,
            gamma=GAMMA,
        )  # fmt: skip
        return out.gradient.reshape(-1)

    grads = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(3), 1000))
    se = jnp.std(grads, 0, ddof=1) / np.sqrt(grads.shape[0])
    np.testing.assert_array_less(np.abs(jnp.mean(grads, 0) - exact), 4.5 * se + 1e-6)


# --- KL estimators (jaxpg.llm.kl): exact values and gradients on a categorical policy --

KL_THETA = jnp.array([0.4, -0.3, 0.9])
KL_REF = jnp.array([-0.2, 0.5, 0.1])


def _kl_placements(theta, estimator):
    """Per action: (k(a), ∇_θ k(a) [loss placement], ∇log π(a)·k(a) [reward placement])."""
    ref_lp = jax.nn.log_softmax(KL_REF)

    def k_of(th, a):
        return kl.kl_estimate(jax.nn.log_softmax(th)[a], ref_lp[a], estimator)

    actions = jnp.arange(3)
    k = jax.vmap(lambda a: k_of(theta, a))(actions)
    grad_k = jax.vmap(lambda a: jax.grad(k_of)(theta, a))(actions)
    score = jax.vmap(lambda a: jax.grad(lambda th: jax.nn.log_softmax(th)[a])(theta))(actions)
    return k, grad_k, score * k[:, None]


def test_kl_estimators_exact_values_and_gradients():
    pi = jax.nn.softmax(KL_THETA)
    rev = float(kl.exact_kl(KL_THETA, KL_REF))
    grad_rev = jax.grad(lambda th: kl.exact_kl(th, KL_REF))(KL_THETA)  # ∇KL(π‖π_ref)
    grad_fwd = jax.grad(lambda th: kl.exact_kl(KL_REF, th))(KL_THETA)  # ∇KL(π_ref‖π)
    ell = jax.nn.log_softmax(KL_THETA) - jax.nn.log_softmax(KL_REF)
    expected = {
        # (E[k], E[∇k] in the loss, E[∇log π · k] in the reward)
        "k1": (rev, jnp.zeros(3), grad_rev),
        "k2": (float(pi @ (0.5 * ell**2)), grad_rev, None),
        "k3": (rev, grad_fwd, grad_rev - grad_fwd),
    }
    for name, (value, loss_grad, reward_grad) in expected.items():
        k, grad_k, reward_term = _kl_placements(KL_THETA, name)
        np.testing.assert_allclose(pi @ k, value, rtol=1e-5)
        np.testing.assert_allclose(pi @ grad_k, loss_grad, atol=1e-6)
        if reward_grad is not None:
            np.testing.assert_allclose(pi @ reward_term, reward_grad, atol=1e-6)
    # k2's expectation is not the KL, and in the reward its gradient is no KL's.
    assert abs(expected["k2"][0] - rev) > 1e-3
    k2_reward = pi @ _kl_placements(KL_THETA, "k2")[2]
    assert float(jnp.max(jnp.abs(k2_reward - grad_rev))) > 1e-3
    assert float(jnp.max(jnp.abs(k2_reward - grad_fwd))) > 1e-3
    with pytest.raises(ValueError, match="kl_estimator"):
        kl.kl_estimate(jnp.zeros(1), jnp.zeros(1), "k4")


def test_trainer_gradient_with_unequal_lengths_and_two_start_states():
    """On a layered MDP with episodes of 1 or 2 steps and two start states, the token
    mean (cispo) and the per-sequence mean (gspo = grpo) differ; the trainer's gradients
    match :func:`jaxpg.variance.tabular.exact_group_mean` of each within 4.5 SE."""
    from jaxpg.variance import Estimator, tabular

    mdp = tabular.random_layered(3, layers=2, p_end=0.5)
    theta = np.random.default_rng(4).normal(size=(mdp.num_states, mdp.num_actions))
    g = 4
    with jax.enable_x64(True):
        enum = tabular.enumerate_trajectories(mdp)
        th64 = jnp.asarray(theta)
        exact = {
            k: np.asarray(tabular.exact_group_mean(enum, th64, Estimator(k, group_size=g)))
            for k in ("cispo", "gspo", "grpo")
        }
    np.testing.assert_allclose(exact["gspo"], exact["grpo"], rtol=1e-12)
    cos = exact["cispo"] @ exact["grpo"]
    cos /= np.linalg.norm(exact["cispo"]) * np.linalg.norm(exact["grpo"])
    assert cos < 0.999, cos  # unequal lengths: the token mean is another direction
    env = tabular.TabularEnv(mdp)
    env_params = env.default_params
    spec = jenvs.env_spec(env, env_params)
    th = jnp.asarray(theta, jnp.float32)

    def one(key, estimator):
        trans = groups.rollout_groups(
            key, tabular.softmax_policy, th, env, env_params, spec, 32, mdp.horizon, g
        )
        out = estimators.batch_gradient(
            estimator, tabular.softmax_policy, th, trans.obs, trans.action, trans.log_prob,
            trans.reward, trans.terminated, trans.truncated, mask=trans.mask,
            gamma=1.0, group_size=g,
        )  # fmt: skip
        return out.gradient.reshape(-1)

    keys = jax.random.split(jax.random.key(9), 600)
    for estimator in ("cispo", "gspo"):
        grads = jax.jit(jax.vmap(lambda k: one(k, estimator)))(keys)  # noqa: B023
        se = jnp.std(grads, 0, ddof=1) / np.sqrt(grads.shape[0])
        err = np.abs(np.asarray(jnp.mean(grads, 0)) - exact[estimator])
        np.testing.assert_array_less(err, 4.5 * np.asarray(se) + 1e-6, err_msg=estimator)
