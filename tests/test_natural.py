"""Natural-gradient maths: Fisher-vector products, CG, the δ-scaled step, TRPO's line search."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxpg import envs as jenvs
from jaxpg import natural, networks, returns, rollout
from tests import tiny_mdp


def _policy(discrete: bool, obs_dim=3, actions=3):
    module = networks.Policy(
        (5,), "tanh", actions, discrete, log_std_init=-0.3, obs_shape=(obs_dim,)
    )
    params = module.init(jax.random.key(0), jnp.zeros((1, obs_dim)))
    # Move off the near-uniform initial head so every term of F matters.
    params = jax.tree.map(lambda x: x + 0.3 * jax.random.normal(jax.random.key(7), x.shape), params)
    return module.apply, params


def _explicit_fisher(apply, params, obs, discrete):
    """F = mean_s E_{a~π}[∇log π ∇log πᵀ], from jacobians of the distribution's parameters.

    One jitted program vmapped over the states (op by op, the jacobians compiled dozens
    of small programs).
    """
    flat, unravel = ravel_pytree(params)
    if discrete:

        def logp_all(th, o):
            return jax.nn.log_softmax(apply(unravel(th), o[None])[0])

        def state_fisher(o):
            jac = jax.jacobian(logp_all)(flat, o)  # [A, P]: ∇log π(a|s) per action
            p = jnp.exp(logp_all(flat, o))
            return (jac * p[:, None]).T @ jac

    else:

        def mean_logstd(th, o):
            d = apply(unravel(th), o[None])
            return d.mean[0], jnp.broadcast_to(d.log_std, d.mean.shape[1:])

        def state_fisher(o):
            j_mu, j_ls = jax.jacobian(mean_logstd)(flat, o)  # [d, P] each
            _, log_std = mean_logstd(flat, o)
            inv_var = jnp.exp(-2.0 * log_std)
            # Gaussian Fisher in (μ, log σ): diag(1/σ²) and diag(2).
            return (j_mu * inv_var[:, None]).T @ j_mu + 2.0 * j_ls.T @ j_ls

    return jnp.mean(jax.jit(jax.vmap(state_fisher))(obs), 0), flat, unravel


@pytest.mark.parametrize("discrete", [True, False])
@pytest.mark.parametrize("damping", [0.0, 0.1])
def test_fisher_vector_product_equals_explicit_fisher(discrete, damping):
    apply, params = _policy(discrete)
    obs = jax.random.normal(jax.random.key(1), (6, 3))
    fisher, flat, unravel = _explicit_fisher(apply, params, obs, discrete)
    old = jax.lax.stop_gradient(apply(params, obs))

    def mean_kl(p):
        return jnp.mean(natural.kl(old, apply(p, obs)))

    v = jax.random.normal(jax.random.key(2), flat.shape)
    fvp = jax.jit(lambda p, w: natural.fisher_vector_product(mean_kl, p, w, damping))
    got = ravel_pytree(fvp(params, unravel(v)))[0]
    want = fisher @ v + damping * v
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)


def test_kl_is_zero_at_equal_and_positive_apart():
    a = jnp.array([[0.1, 0.5, -0.2]])
    assert float(natural.kl(a, a)[0]) == pytest.approx(0.0, abs=1e-7)
    # KL(Bern(½) ‖ Bern(p)) with logits (0, 0) and (0, log 3): p = (1/4, 3/4);
    # ½ log(½ / ¼) + ½ log(½ / ¾) = ½ log(4/3) = 0.143841.
    kl = natural.kl(jnp.zeros((2,)), jnp.array([0.0, jnp.log(3.0)]))
    assert float(kl) == pytest.approx(0.5 * np.log(4.0 / 3.0), rel=1e-5)
    # Gaussians: KL(N(0,1) ‖ N(1,2²)) = log 2 + (1 + 1)/8 − ½ = 0.443147.
    g0 = networks.Gaussian(jnp.zeros((1,)), jnp.zeros((1,)))
    g1 = networks.Gaussian(jnp.ones((1,)), jnp.full((1,), jnp.log(2.0)))
    assert float(natural.kl(g0, g1)) == pytest.approx(np.log(2.0) + 0.25 - 0.5, rel=1e-5)


@pytest.mark.parametrize("jit", [False, True])
def test_conjugate_gradient_matches_solve(jit):
    n = 6
    m = jax.random.normal(jax.random.key(3), (n, n))
    a = m @ m.T + 0.5 * jnp.eye(n)  # SPD, condition number moderate
    b = jax.random.normal(jax.random.key(4), (n,))
    # A pytree right-hand side: the vector split into two leaves.
    tree_b = {"u": b[:2], "w": b[2:]}

    def matvec(t):
        y = a @ jnp.concatenate([t["u"], t["w"]])
        return {"u": y[:2], "w": y[2:]}

    cg = natural.conjugate_gradient
    if jit:
        cg = jax.jit(cg, static_argnums=(0, 2))
    out = cg(matvec, tree_b, 3 * n)
    x = jnp.concatenate([out.x["u"], out.x["w"]])
    np.testing.assert_allclose(x, jnp.linalg.solve(a, b), rtol=1e-3, atol=1e-4)
    assert float(out.residual) < 1e-3
    # Fewer iterations than n leave a residual that the result reports.
    short = natural.conjugate_gradient(matvec, tree_b, 1)
    resid = jnp.linalg.norm(b - a @ jnp.concatenate([short.x["u"], short.x["w"]]))
    assert float(short.residual) == pytest.approx(float(resid), rel=1e-3)


def _batch(discrete: bool, n=64):
    apply, params = _policy(discrete)
    k_obs, k_act, k_adv = jax.random.split(jax.random.key(5), 3)
    obs = jax.random.normal(k_obs, (n, 3))
    dist = apply(params, obs)
    action = networks.sample(k_act, dist)
    adv = jax.random.normal(k_adv, (n,)) + 0.5 * (
        action == 0 if discrete else action[:, 0] > 0
    ).astype(jnp.float32)
    batch = natural.PolicyBatch(
        obs, action, networks.log_prob(dist, action), adv, jnp.ones((n,), jnp.float32)
    )
    return apply, params, batch


@pytest.mark.parametrize("discrete", [True, False])
def test_trpo_steps_respect_kl_and_improve_the_surrogate(discrete):
    apply, params, batch = _batch(discrete)
    deltas = jnp.array([1e-4, 1e-3, 1e-2, 1e-1, 1.0])

    damping = 1e-3
    old = jax.lax.stop_gradient(apply(params, batch.obs))

    def mean_kl(p):
        return jnp.mean(natural.kl(old, apply(p, batch.obs)))

    def step(delta):
        new, info = natural.trust_region_step(
            apply, params, batch, delta, cg_iters=20, damping=damping
        )
        s = jax.tree.map(jnp.subtract, new, params)
        quad = lambda lam: (
            0.5
            * natural.tree_dot(  # noqa: E731
                s, natural.fisher_vector_product(mean_kl, params, s, lam)
            )
        )
        return info, mean_kl(new), quad(damping), quad(0.0)

    # δ is traced: one compiled program for all five (vmap).
    info, measured, quad_damped, quad = jax.jit(jax.vmap(step))(deltas)
    assert np.all(np.asarray(info.accepted) == 1.0)
    np.testing.assert_array_less(np.asarray(measured), np.asarray(deltas) * (1 + 1e-4) + 1e-8)
    np.testing.assert_allclose(measured, info.kl, rtol=1e-4, atol=1e-8)
    assert np.all(np.asarray(info.gain) > 0)
    # The step is scaled so that ½ sᵀ(F + λI)s = δ (times β^{2k} after backtracking) ...
    np.testing.assert_allclose(quad_damped, deltas * info.fraction**2, rtol=1e-3)
    # ... and for small δ the quadratic model ½ sᵀFs is the measured KL.
    assert float(info.fraction[0]) == 1.0
    assert float(measured[0]) == pytest.approx(float(quad[0]), rel=0.05)


def test_npg_full_step_has_kl_near_delta_and_no_step_without_gradient():
    apply, params, batch = _batch(True)
    new, info = jax.jit(
        lambda d: natural.trust_region_step(
            apply, params, batch, d, cg_iters=20, damping=1e-3, line_search_on=False
        )
    )(1e-3)
    assert float(info.fraction) == 1.0 and float(info.accepted) == 1.0
    assert 0.5e-3 < float(info.kl) < 1.5e-3  # ≈ δ: the quadratic model of the KL
    # Zero advantages: zero gradient, so TRPO accepts nothing and θ stays put.
    flat = batch._replace(adv=jnp.zeros_like(batch.adv))
    same, info = natural.trust_region_step(apply, params, flat, 0.01)
    assert float(info.accepted) == 0.0
    for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(a, b)


def test_line_search_takes_no_step_when_every_candidate_breaks_the_constraint():
    # A surrogate that only decreases along the step: nothing is accepted.
    params = {"w": jnp.ones((2,))}
    out = natural.line_search(
        lambda p: -jnp.sum(p["w"]),
        lambda p: jnp.sum((p["w"] - 1.0) ** 2),
        params,
        {"w": jnp.ones((2,))},
        delta=0.5,
        iters=5,
    )
    assert float(out.accepted) == 0.0 and float(out.fraction) == 0.0
    np.testing.assert_array_equal(out.params["w"], params["w"])
    # Uphill but too far: the first candidate inside KL ≤ δ is taken: KL(β^k) = 2β^{2k}
    # ≤ 0.5 first at β^k ≤ 0.5, i.e. k = 4 for β = 0.8 (0.8^4 = 0.4096).
    out = natural.line_search(
        lambda p: jnp.sum(p["w"]),
        lambda p: jnp.sum((p["w"] - 1.0) ** 2),
        params,
        {"w": jnp.ones((2,))},
        delta=0.5,
        iters=10,
    )
    assert float(out.accepted) == 1.0
    assert float(out.fraction) == pytest.approx(0.8**4, rel=1e-6)


def _exact_natural_direction(theta, damping):
    """(F + λI)⁻¹ ĝ on TwoStep, by enumeration, for the trainer's per-step normalisation.

    Every episode has 2 steps, so the per-step mean over the batch has expectation
    ½ E[Σ_t ...]: ĝ = ½ ∇J (Ψ_t = G_t) and F = ½ (F(s0) + E[F(s1)]).
    """
    probs = jax.nn.softmax(theta, axis=-1)

    def state_fisher(s):
        # Softmax Fisher in the logits of state s, embedded in θ [3, 2] flattened.
        p = probs[s]
        f_logits = jnp.diag(p) - jnp.outer(p, p)
        f = jnp.zeros((6, 6))
        return f.at[2 * s : 2 * s + 2, 2 * s : 2 * s + 2].set(f_logits)

    p_s1 = probs[0]  # P(s1 = 1 + a0)
    fisher = 0.5 * (state_fisher(0) + p_s1[0] * state_fisher(1) + p_s1[1] * state_fisher(2))
    grad = 0.5 * jax.grad(tiny_mdp.exact_objective)(theta).reshape(-1)
    return jnp.linalg.solve(fisher + damping * jnp.eye(6), grad)


def test_sampled_natural_direction_converges_to_the_exact_one():
    theta = jnp.array([[0.3, -0.2], [0.1, 0.4], [-0.5, 0.2]])
    damping = 0.01
    exact = _exact_natural_direction(theta, damping)
    env, env_params = jenvs.make_env(tiny_mdp.TwoStep())
    spec = jenvs.env_spec(env, env_params)

    def direction(key, n):
        trans = rollout.rollout_episodes(
            key, tiny_mdp.policy_apply, theta, env, env_params, spec, n, 2
        )
        zeros = jnp.zeros_like(trans.reward)
        g_t = returns.reward_to_go(
            trans.reward, zeros, trans.terminated, trans.truncated, gamma=1.0
        )
        batch = natural.PolicyBatch(trans.obs, trans.action, trans.log_prob, g_t, trans.mask)
        old = tiny_mdp.policy_apply(theta, batch.obs)

        def surrogate(p):
            logp = networks.log_prob(tiny_mdp.policy_apply(p, batch.obs), batch.action)
            return jnp.mean(jnp.exp(logp - batch.old_log_prob) * batch.adv)

        def mean_kl(p):
            return jnp.mean(natural.kl(old, tiny_mdp.policy_apply(p, batch.obs)))

        g = jax.grad(surrogate)(theta)
        fvp = lambda v: natural.fisher_vector_product(mean_kl, theta, v, damping)  # noqa: E731
        return natural.conjugate_gradient(fvp, g, 12).x.reshape(-1)

    errors = []
    for n in (64, 1024, 16384):
        keys = jax.random.split(jax.random.key(n), 16)
        dirs = jax.jit(jax.vmap(lambda k, n=n: direction(k, n)))(keys)
        err = jnp.linalg.norm(dirs - exact, axis=1) / jnp.linalg.norm(exact)
        errors.append(float(jnp.mean(err)))
        # The mean over 16 seeds is within 4 standard errors of the exact direction
        # (the estimator is consistent, with an O(1/N) ratio bias at small N).
        mean = jnp.mean(dirs, 0)
        se = jnp.std(dirs, 0, ddof=1) / 4.0
        if n == 16384:
            np.testing.assert_array_less(np.abs(mean - exact), 4 * se + 1e-3)
    # Relative error shrinks like 1/√N: ×16 the batch, about ÷4 the error.
    assert errors[1] < errors[0] / 2.5 and errors[2] < errors[1] / 2.5, errors
    assert errors[2] < 0.1, errors
