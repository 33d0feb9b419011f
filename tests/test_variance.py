"""Proof tests for jaxpg.variance: exact tiny MDPs, seeded Monte Carlo, metrics.

Exact comparisons run in float64 inside ``jax.enable_x64(True)`` (never flipped
globally). Monte Carlo tolerances are stated in standard errors: with
K = 20,000 trajectories and ≤ 14 coordinates × 4 estimators, |z| < 4.5 fails by
chance with probability < 1e-3 per run (Bonferroni), and the seeds are fixed.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpg import networks
from jaxpg.variance import Estimator, batch_baselines, metrics, tabular
from jaxpg.variance import gradients as grads_mod
from jaxpg.variance.gradients import per_trajectory_gradients, pool_gradients, sample_episodes

UNBIASED = [
    Estimator("reinforce"),
    Estimator("reward_to_go"),
    Estimator("baseline"),
    Estimator("vpg", lam=1.0, label="vpg1"),
]


def layered_setup(seed=0):
    mdp = tabular.random_layered(seed)
    theta = np.random.default_rng(seed + 1).normal(size=(mdp.num_states, mdp.num_actions))
    v_wrong = np.random.default_rng(seed + 2).normal(size=mdp.num_states) * 2.0
    return mdp, theta, v_wrong


def exact_layered_values(mdp, theta, width=2):
    """V(s) = V^π_{layer(s)}(s): exact for a layered MDP (state ⇒ time)."""
    vt = np.asarray(tabular.state_values(mdp, jnp.asarray(theta)))
    v = np.zeros(mdp.num_states)
    for s in range(mdp.num_states - 1):
        v[s] = vt[s // width, s]
    return v


# --- exact (float64) -------------------------------------------------------------


@pytest.mark.parametrize("mdp_name", ["layered", "refund"])
def test_exact_mean_of_unbiased_estimators_is_grad_j(mdp_name):
    """R0: Σ_τ p(τ) ĝ(τ) equals ∇J from backward induction, to 1e-10."""
    with jax.enable_x64(True):
        if mdp_name == "layered":
            mdp, theta, v = layered_setup()
        else:
            mdp = tabular.two_step_refund()
            theta = np.random.default_rng(3).normal(size=(4, 2))
            v = np.array([1.0, -2.0, 0.5, 3.0])
        theta = jnp.asarray(theta)
        enum = tabular.enumerate_trajectories(mdp)
        assert abs(float(tabular.trajectory_probs(enum, theta).sum()) - 1.0) < 1e-12
        exact = tabular.exact_gradient(mdp, theta)
        for est in UNBIASED:
            m = tabular.exact_moments(enum, theta, est, jnp.asarray(v))
            np.testing.assert_allclose(m.mean, exact, atol=1e-10, err_msg=est.name)


def test_gae_unbiased_with_exact_critic_biased_with_wrong_one():
    """Pitfall 5: λ < 1 is unbiased when V = V^π and biased for a wrong V."""
    with jax.enable_x64(True):
        mdp, theta, v_wrong = layered_setup()
        theta = jnp.asarray(theta)
        enum = tabular.enumerate_trajectories(mdp)
        exact = tabular.exact_gradient(mdp, theta)
        v_star = jnp.asarray(exact_layered_values(mdp, theta))
        for lam in (0.0, 0.5):
            est = Estimator("vpg", lam=lam)
            good = tabular.exact_moments(enum, theta, est, v_star)
            bad = tabular.exact_moments(enum, theta, est, jnp.asarray(v_wrong))
            np.testing.assert_allclose(good.mean, exact, atol=1e-10)
            assert float(jnp.linalg.norm(bad.mean - exact)) > 1e-2 * float(jnp.linalg.norm(exact))


def test_exact_discount_form_vs_common_form():
    """Pitfall 4: with γ < 1, reinforce and γ^t-weighted reward-to-go give ∇J_γ;
    the common reward-to-go does not."""
    gamma = 0.7
    with jax.enable_x64(True):
        mdp, theta, _ = layered_setup()
        theta = jnp.asarray(theta)
        enum = tabular.enumerate_trajectories(mdp)
        exact = tabular.exact_gradient(mdp, theta, gamma)
        for est in (
            Estimator("reinforce", gamma=gamma),
            Estimator("reward_to_go", gamma=gamma, exact_discount=True),
        ):
            np.testing.assert_allclose(
                tabular.exact_moments(enum, theta, est).mean, exact, atol=1e-10
            )
        common = tabular.exact_moments(enum, theta, Estimator("reward_to_go", gamma=gamma))
        assert float(jnp.linalg.norm(common.mean - exact)) > 1e-3


def test_reward_to_go_can_have_more_variance_than_total_return():
    """Pitfall 12: an early reward refunded later; tr Σ(E2) > tr Σ(E1) exactly.

    At θ = 0 the t = 1 weight is bonus·a₁ for the total return but −5 + bonus·a₁
    in state 1 for reward-to-go, so no test may assume E2 ≤ E1 in general.
    """
    with jax.enable_x64(True):
        mdp = tabular.two_step_refund()
        theta = jnp.zeros((4, 2))
        enum = tabular.enumerate_trajectories(mdp)
        tr1 = float(tabular.exact_moments(enum, theta, Estimator("reinforce")).trace)
        tr2 = float(tabular.exact_moments(enum, theta, Estimator("reward_to_go")).trace)
    # By hand, θ = 0: E1 contributes 0.5 (t=0) + 0.25·0.5 (t=1) = 0.625 minus the
    # squared mean; E2 adds the refund's 5² at t = 1 in state 1.
    assert tr2 > 4.0 * tr1, (tr1, tr2)


def exact_pairs(enum, theta, n=2):
    """All ordered pairs of enumerated trajectories as a pool of batches of 2."""
    k = enum.pool.mask.shape[1]
    i, j = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    idx = np.stack([i.ravel(), j.ravel()], axis=1).ravel()  # batches (i, j) adjacent
    pool = jax.tree.map(lambda x: x[:, idx], enum.pool)
    p = tabular.trajectory_probs(enum, theta)
    return pool, p[i.ravel()] * p[j.ravel()]


@pytest.mark.parametrize("kind,ratio", [("mean", 0.5), ("loo", 1.0)])
def test_batch_mean_baseline_exact_shrinkage(kind, ratio):
    """Pitfall 2 / R6 exactly: over all pairs (N = 2), E ḡ = (1 − 1/N) ∇J for the
    batch mean including itself, and = ∇J for leave-one-out."""
    with jax.enable_x64(True):
        mdp, theta, _ = layered_setup()
        theta = jnp.asarray(theta)
        enum = tabular.enumerate_trajectories(mdp)
        pool, p_pair = exact_pairs(enum, theta)
        zeros = jnp.zeros_like(pool.reward)
        rtg = grads_mod.episode_weights(Estimator("reward_to_go"), pool, zeros, zeros)
        w = batch_baselines.batch_weights(kind, pool, rtg, 2)
        g = grads_mod.gradients_from_weights(tabular.softmax_policy, theta, pool, w)
        batch_mean = g.reshape(-1, 2, g.shape[-1]).mean(axis=1)
        expected = p_pair @ batch_mean
        exact = tabular.exact_gradient(mdp, theta)
        np.testing.assert_allclose(expected, ratio * exact, atol=1e-10)


def test_refit_critic_on_the_batch_is_biased():
    """A critic refit on the same batch (N = 2) does not average to ∇J."""
    with jax.enable_x64(True):
        mdp, theta, _ = layered_setup()
        theta = jnp.asarray(theta)
        enum = tabular.enumerate_trajectories(mdp)
        pool, p_pair = exact_pairs(enum, theta)
        zeros = jnp.zeros_like(pool.reward)
        rtg = grads_mod.episode_weights(Estimator("reward_to_go"), pool, zeros, zeros)
        w = batch_baselines.batch_weights("refit", pool, rtg, 2)
        g = grads_mod.gradients_from_weights(tabular.softmax_policy, theta, pool, w)
        expected = p_pair @ g.reshape(-1, 2, g.shape[-1]).mean(axis=1)
        exact = tabular.exact_gradient(mdp, theta)
        assert float(jnp.linalg.norm(expected - exact)) > 0.05 * float(jnp.linalg.norm(exact))


def test_loo_is_rescaled_batch_mean():
    rtg = jnp.asarray(np.random.default_rng(0).normal(size=(5, 12)))
    mean = batch_baselines.mean_weights(rtg, 4, leave_one_out=False)
    loo = batch_baselines.mean_weights(rtg, 4, leave_one_out=True)
    g = rtg.reshape(5, 3, 4)
    direct = g - (g.sum(axis=2, keepdims=True) - g) / 3.0  # G_i − mean_{j≠i} G_j
    np.testing.assert_allclose(loo, direct.reshape(5, 12), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(loo, mean * 4.0 / 3.0, rtol=1e-6, atol=1e-6)


def test_float32_exact_moments_close_to_float64():
    """Pitfall 16: the float32 path agrees with float64 to ~1e-5 relative."""
    mdp, theta, v = layered_setup()
    est = Estimator("baseline")
    with jax.enable_x64(True):
        m64 = tabular.exact_moments(
            tabular.enumerate_trajectories(mdp), jnp.asarray(theta), est, jnp.asarray(v)
        )
        m64 = (np.asarray(m64.mean), float(m64.trace))
    enum32 = tabular.enumerate_trajectories(mdp, np.float32)
    m32 = tabular.exact_moments(
        enum32, jnp.asarray(theta, jnp.float32), est, jnp.asarray(v, jnp.float32)
    )
    np.testing.assert_allclose(m32.mean, m64[0], rtol=1e-4, atol=1e-5)
    assert abs(float(m32.trace) - m64[1]) < 1e-4 * m64[1]


# --- Monte Carlo through the gymnax wrapper (float32) ------------------------------

K_MC = 20_000


@pytest.fixture(scope="module")
def mc_layered():
    """Sampled per-trajectory gradients of every unbiased estimator, same pool."""
    mdp, theta, v = layered_setup()
    env = tabular.TabularEnv(mdp)
    pool = sample_episodes(
        jax.random.key(42),
        env,
        env.default_params,
        tabular.softmax_policy,
        jnp.asarray(theta, jnp.float32),
        K_MC,
    )
    g = pool_gradients(
        tabular.softmax_policy,
        jnp.asarray(theta, jnp.float32),
        pool,
        UNBIASED,
        value_apply=tabular.table_value,
        value_params=jnp.asarray(v, jnp.float32),
    )
    with jax.enable_x64(True):
        enum = tabular.enumerate_trajectories(mdp)
        exact = {
            e.name: tabular.exact_moments(enum, jnp.asarray(theta), e, jnp.asarray(v))
            for e in UNBIASED
        }
        exact = {k: (np.asarray(m.mean), np.asarray(m.cov)) for k, m in exact.items()}
        grad_j = np.asarray(tabular.exact_gradient(mdp, jnp.asarray(theta)))
    return pool, g, exact, grad_j


def test_sampled_means_within_se_of_exact_gradient(mc_layered):
    _, g, exact, grad_j = mc_layered
    for name, gi in g.items():
        gi = np.asarray(gi, np.float64)
        var = np.diag(exact[name][1])
        live = var > 1e-12  # parameters of the terminal state have no gradient
        z = (gi.mean(0) - grad_j)[live] / np.sqrt(var[live] / K_MC)
        assert np.max(np.abs(z)) < 4.5, (name, z)
        np.testing.assert_array_equal(gi[:, ~live], 0.0)


def test_sampled_covariance_matches_exact(mc_layered):
    """tr Σ₁ sampled vs enumerated: within 4 SE (SE of the mean of ‖ĝ_i − μ‖²)."""
    _, g, exact, _ = mc_layered
    for name, gi in g.items():
        gi = np.asarray(gi, np.float64)
        mu, cov = exact[name]
        sq = np.sum((gi - mu) ** 2, axis=1)
        z = (sq.mean() - np.trace(cov)) / (sq.std(ddof=1) / np.sqrt(K_MC))
        assert abs(z) < 4.0, (name, z)
        full = np.cov(gi, rowvar=False)
        assert np.max(np.abs(full - cov)) < 0.05 * np.max(np.abs(cov)), name


def test_sampled_batch_mean_shrinkage(mc_layered):
    """R6 on samples: scale ratio ḡ·∇J/‖∇J‖² = 1 − 1/N (mean) or 1 (loo), 4 SE."""
    pool, _, _, grad_j = mc_layered
    theta = jnp.asarray(layered_setup()[1], jnp.float32)
    zeros = jnp.zeros_like(pool.reward)
    rtg = grads_mod.episode_weights(Estimator("reward_to_go"), pool, zeros, zeros)
    for n in (2, 4):
        for kind, want in (("mean", 1.0 - 1.0 / n), ("loo", 1.0)):
            w = batch_baselines.batch_weights(kind, pool, rtg, n)
            sub = batch_baselines.truncate_pool(pool, n)
            g = grads_mod.gradients_from_weights(tabular.softmax_policy, theta, sub, w)
            bm = np.asarray(g, np.float64).reshape(-1, n, g.shape[1]).mean(1)
            proj = bm @ grad_j / (grad_j @ grad_j)
            z = (proj.mean() - want) / (proj.std(ddof=1) / np.sqrt(len(proj)))
            assert abs(z) < 4.0, (kind, n, proj.mean(), z)


# --- sampling and API ----------------------------------------------------------------


def test_one_key_per_trajectory_and_chunk_invariance():
    mdp = tabular.random_layered(1)
    env = tabular.TabularEnv(mdp)
    theta = jnp.zeros((mdp.num_states, mdp.num_actions))
    args = (jax.random.key(7), env, env.default_params, tabular.softmax_policy, theta, 40)
    a = per_trajectory_gradients(*args, estimator="reward_to_go", chunk_size=3)
    b = per_trajectory_gradients(*args, estimator="reward_to_go", chunk_size=64)
    np.testing.assert_array_equal(a, b)
    assert len({tuple(np.round(np.asarray(r), 6)) for r in a}) > 5  # not one episode repeated
    pool = sample_episodes(*args, chunk_size=5)
    c = pool_gradients(tabular.softmax_policy, theta, pool, [Estimator("reward_to_go")])
    np.testing.assert_allclose(c["reward_to_go"], a, rtol=1e-6, atol=1e-6)


def test_cartpole_mlp_gradients_and_critic():
    import gymnax

    env, env_params = gymnax.make("CartPole-v1")
    pol = networks.Policy((8,), "tanh", 2, True)
    val = networks.Value((8,), "tanh")
    obs = jnp.zeros((1, 4))
    pp = pol.init(jax.random.key(0), obs)
    vp = val.init(jax.random.key(1), obs)
    g = per_trajectory_gradients(
        jax.random.key(2),
        env,
        env_params,
        pol.apply,
        pp,
        6,
        estimator="vpg",
        lam=0.9,
        value_apply=val.apply,
        value_params=vp,
        max_steps=40,
    )
    d = sum(x.size for x in jax.tree.leaves(pp))
    assert g.shape == (6, d) and bool(jnp.all(jnp.isfinite(g)))
    with pytest.raises(ValueError, match="needs value_apply"):
        per_trajectory_gradients(
            jax.random.key(2), env, env_params, pol.apply, pp, 2, estimator="baseline", max_steps=10
        )
    # Every registered estimator is measurable (ppo: its first step's gradient at θ_old,
    # vpg's GAE weights); an unknown name is refused with the allowed ones.
    with pytest.raises(ValueError, match="'a2c' is unknown; allowed: reinforce"):
        per_trajectory_gradients(
            jax.random.key(2), env, env_params, pol.apply, pp, 2, estimator="a2c", max_steps=10
        )
    ppo = per_trajectory_gradients(
        jax.random.key(2), env, env_params, pol.apply, pp, 6, estimator="ppo", lam=0.9,
        value_apply=val.apply, value_params=vp, max_steps=40,
    )  # fmt: skip
    np.testing.assert_array_equal(ppo, g)


# --- metrics ---------------------------------------------------------------------------


def test_signal_estimate_is_unbiased_and_noise_scale():
    rng = np.random.default_rng(0)
    g = np.array([1.0, -2.0, 0.5, 0.0])  # ‖g‖² = 5.25
    est = []
    for _ in range(200):
        x = g + rng.normal(size=(8, 4)) * 3.0  # tr Σ = 36
        est.append(float(metrics.pool_stats(jnp.asarray(x)).signal_sq))
    est = np.array(est)
    # Naive ‖ĝ̄‖² would average 5.25 + 36/8 = 9.75.
    assert abs(est.mean() - 5.25) < 4 * est.std() / np.sqrt(len(est))


def test_batch_metrics_follow_the_noise_scale_law():
    """For isotropic noise in high dimension, pairwise cos ≈ N/(N+B)."""
    rng = np.random.default_rng(1)
    d, k = 2000, 4096
    g = np.zeros(d)
    g[0] = 1.0
    x = jnp.asarray(g + rng.normal(size=(k, d)) * np.sqrt(8.0 / d), jnp.float32)  # B = 8
    out = metrics.batch_metrics(x, 8, jnp.asarray(g), rng=np.random.default_rng(0), resamples=50)
    assert abs(out["pairwise_cos"] - 0.5) < 0.05
    assert abs(out["cos_ref"] - np.sqrt(0.5)) < 0.05
    assert out["pairwise_cos_lo"] <= out["pairwise_cos"] <= out["pairwise_cos_hi"]
    assert abs(out["tr_sigma_N"] - 1.0) < 0.3  # tr Σ₁/N = 8/8
    s = metrics.estimator_summary(x, jnp.asarray(g), 8.0, 10**6)
    assert abs(s["B"] - 8.0) < 1.0 and abs(s["scale_ratio"] - 1.0) < 5 * s["scale_ratio_se"]


def test_param_layers_cover_the_flat_vector():
    pp = networks.Policy((8, 4), "tanh", 2, True).init(jax.random.key(0), jnp.zeros((1, 3)))
    layers = grads_mod.param_layers(pp)
    assert layers[0][1] == 0 and layers[-1][2] == sum(x.size for x in jax.tree.leaves(pp))
    assert all(a[2] == b[1] for a, b in zip(layers, layers[1:], strict=False))


# --- command line ----------------------------------------------------------------------


def test_cli_variance_help_and_bad_input(capsys):
    from jaxpg.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["variance", "--help"])
    assert exc.value.code == 0
    assert "--pool-size" in capsys.readouterr().out
    assert main(["variance", "--pool-size", "2", "--out", "/tmp/none"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxpg: error:")


def test_cli_variance_parts_scale_and_gamma():
    """--parts/--scale/--gamma reach the ExperimentConfig: explicit > scale > default."""
    import argparse

    from jaxpg.cli import main
    from jaxpg.commands import variance as cmd
    from jaxpg.variance import experiment

    parser = argparse.ArgumentParser()
    cmd.register(parser.add_subparsers())
    args = parser.parse_args(["variance", "--scale", "accelerator", "--ppo-seeds", "3"])
    cfg = cmd.experiment_config(args)
    assert cfg.law_pool == cmd.ACCELERATOR["law_pool"] and cfg.ppo_seeds == 3
    assert cfg.parts == experiment.PARTS
    assert max(cfg.resolved_law_sizes()) == 4096  # R4 up to N = 4096, 32 batches
    args = parser.parse_args(["variance", "--parts", "law,gae_map", "--gamma", "0.97"])
    cfg = cmd.experiment_config(args)
    assert cfg.parts == ("law", "gae_map") and cfg.gamma == 0.97
    assert cfg.law_pool == experiment.ExperimentConfig().law_pool
    assert experiment.estimator_set((), 0.97)[-1].gamma == 0.97
    with pytest.raises(SystemExit) as exc:  # argparse's own error
        main(["variance", "--parts", "bogus", "--out", "/tmp/none"])
    assert exc.value.code == 2
    for bad in (["--gamma", "1.5"], ["--ppo-sizes", "3"], ["--law-pool", "1000"]):
        assert main(["variance", *bad, "--out", "/tmp/none"]) == 2
    with pytest.raises(ValueError, match="powers of two"):
        experiment.ExperimentConfig(law_batch_sizes=(6,))


@pytest.mark.slow
def test_ppo_step_uses_the_public_update_and_points_uphill():
    """E5b through jaxpg.make_update: lr = 1e-30 moves nothing (float32); at a random
    CartPole policy the full PPO update Δθ has a positive cosine to an independent T1
    gradient."""
    import jaxpg
    from jaxpg.runspec import make_runspec
    from jaxpg.variance import experiment, ppo_step

    cfg = jaxpg.Config(num_epochs=2, num_minibatches=2, hidden_sizes=(16,), ent_coef=0.0)
    state = jaxpg.make_init(cfg)(jax.random.key(0))
    agent = make_runspec(cfg)
    g = per_trajectory_gradients(
        jax.random.key(1),
        agent.env,
        agent.env_params,
        experiment.policy_apply(agent),
        state.params["policy"],
        1024,
        estimator="reward_to_go",
    )
    zero = ppo_step.step_directions(
        jax.random.key(2), cfg.replace(lr=1e-30), state.params, None, 4, 2
    )
    assert zero.shape == (2, g.shape[1]) and np.abs(zero).max() < 1e-20
    rows = ppo_step.measure(
        jax.random.key(3), cfg, state.params, state.opt_state, g.mean(0), (16,), 4
    )
    assert rows[0]["N"] == 16 and len(rows[0]["cos_ref_all"]) == 4
    assert rows[0]["cos_ref_lo"] > 0.1, rows


@pytest.mark.slow
def test_cli_variance_end_to_end(tmp_path):
    import json

    from jaxpg.cli import main

    rc = main(
        [
            "variance",
            "--out",
            str(tmp_path),
            "--pool-size",
            "64",
            "--ref-size",
            "128",
            "--targets",
            "60",
            "--resamples",
            "20",
            "--batch-baseline-sizes",
            "2",
            "--vstar-size",
            "64",
            "--vstar-steps",
            "50",
            "--decomp-states",
            "64",
            "--law-pool",
            "256",
            "--law-chunk",
            "128",
            "--ppo-sizes",
            "2",
            "--ppo-seeds",
            "2",
            "--gae-gammas",
            "0.99,1",
            "--gae-lambdas",
            "0.5,1",
        ]
    )
    assert rc == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [c["name"] for c in summary["checkpoints"]][0] == "init"
    header = (tmp_path / "variance.csv").read_text().splitlines()[0].split(",")
    assert {"checkpoint", "seed", "estimator", "N", "cos_ref", "tr_sigma1"} <= set(header)
    first = summary["checkpoints"][0]
    assert {"estimators", "decomposition", "law", "ppo_step", "gae_map"} <= set(first)
    assert len(first["gae_map"]["rel_mse_N"]) == 2
    for stem in ("decomposition", "law", "ppo_step", "gae_map", "cosine"):
        assert (tmp_path / f"variance_{stem}.png").exists()
    assert "## R4" in (tmp_path / "table.md").read_text()


def test_vstar_fits_time_limited_returns():
    """V*(s, t) on a toy pool where G_t = T − t exactly: the fit recovers it."""
    from jaxpg import rollout
    from jaxpg.variance import vstar

    T, K = 20, 64
    obs = jnp.asarray(np.random.default_rng(0).normal(size=(T, K, 2)), jnp.float32)
    z = jnp.zeros((T, K))
    pool = rollout.Transition(obs, z.astype(jnp.int32), z, z, z > 0, z > 0, obs, z + 1, z, z)
    g = jnp.broadcast_to(jnp.arange(T, 0, -1, dtype=jnp.float32)[:, None], (T, K))
    apply, params = vstar.fit(
        jax.random.key(0), pool, g, T, hidden_sizes=(16,), steps=600, batch_size=256
    )
    # A constant (the mean, 10.5) would be off by 5 on average; time makes it ~exact.
    assert float(jnp.mean(jnp.abs(apply(params, obs) - g))) < 1.0


def test_frozen_params_are_arguments_no_recompile():
    """A new checkpoint (new param values, same shapes) reuses the compiled sampler
    and gradient programs: freezing = passing params as arguments (docs/variance.md, "Protocol")."""
    mdp = tabular.random_layered(2)
    env = tabular.TabularEnv(mdp)
    shape = (mdp.num_states, mdp.num_actions)
    est = [Estimator("reward_to_go")]

    def measure(theta):
        pool = sample_episodes(
            jax.random.key(0), env, env.default_params, tabular.softmax_policy, theta, 16
        )
        return pool_gradients(tabular.softmax_policy, theta, pool, est)

    measure(jnp.zeros(shape))
    sizes = (grads_mod._sample._cache_size(), grads_mod._grads._cache_size())
    measure(jnp.ones(shape))
    assert (grads_mod._sample._cache_size(), grads_mod._grads._cache_size()) == sizes


def test_ppo_weights_equal_clipped_surrogate_gradient_at_theta_old():
    """E5a: the mean of the per-trajectory terms is ∇ of PPO's clipped objective at
    θ = θ_old with batch-normalised advantages (the clip is inactive at ratio 1)."""
    from jaxpg import estimators

    mdp, theta, v = layered_setup()
    theta = jnp.asarray(theta, jnp.float32)
    env = tabular.TabularEnv(mdp)
    n = 6
    pool = sample_episodes(
        jax.random.key(3), env, env.default_params, tabular.softmax_policy, theta, n
    )
    values, next_values = grads_mod.critic_values(tabular.table_value, jnp.asarray(v), pool)
    adv = grads_mod.episode_weights(Estimator("vpg", 0.99, 0.95), pool, values, next_values)
    w = batch_baselines.ppo_weights(adv, pool.mask, n)
    ours = grads_mod.gradients_from_weights(tabular.softmax_policy, theta, pool, w).mean(0)

    norm = estimators.normalize(adv, pool.mask)
    old = jax.lax.stop_gradient(theta)

    def objective(th):
        logp = jax.nn.log_softmax(tabular.softmax_policy(th, pool.obs))
        logp_old = jax.nn.log_softmax(tabular.softmax_policy(old, pool.obs))
        pick = lambda lp: jnp.take_along_axis(lp, pool.action[..., None], -1)[..., 0]  # noqa: E731
        return estimators.ppo_surrogate(pick(logp), pick(logp_old), norm, pool.mask, 0.2)[0]

    np.testing.assert_allclose(ours, jax.grad(objective)(theta).reshape(-1), rtol=1e-4, atol=1e-6)


def test_r0_monte_carlo_at_protocol_size():
    """R0 as docs/variance.md ("Criteria") states it: K = 2·10⁵ sampled trajectories,
    every coordinate |z| < 4 against the exact gradient and tr Cov within 2% of the exact
    one."""
    k = 200_000
    mdp, theta, v = layered_setup(5)
    env = tabular.TabularEnv(mdp)
    th32 = jnp.asarray(theta, jnp.float32)
    pool = sample_episodes(
        jax.random.key(11),
        env,
        env.default_params,
        tabular.softmax_policy,
        th32,
        k,
        chunk_size=8192,
    )
    g = pool_gradients(
        tabular.softmax_policy,
        th32,
        pool,
        UNBIASED,
        chunk_size=8192,
        value_apply=tabular.table_value,
        value_params=jnp.asarray(v, jnp.float32),
    )
    with jax.enable_x64(True):
        enum = tabular.enumerate_trajectories(mdp)
        grad_j = np.asarray(tabular.exact_gradient(mdp, jnp.asarray(theta)))
        exact = {
            e.name: tabular.exact_moments(enum, jnp.asarray(theta), e, jnp.asarray(v))
            for e in UNBIASED
        }
        exact = {n: (np.asarray(m.cov), float(m.trace)) for n, m in exact.items()}
    for name, gi in g.items():
        gi = np.asarray(gi, np.float64)
        var = np.diag(exact[name][0])
        live = var > 1e-12
        z = (gi.mean(0) - grad_j)[live] / np.sqrt(var[live] / k)
        assert np.max(np.abs(z)) < 4.0, (name, z)
        tr = float(np.sum(gi.var(axis=0, ddof=1)))
        assert abs(tr - exact[name][1]) < 0.02 * exact[name][1], (name, tr, exact[name][1])


# --- Tucker-style decomposition -------------------------------------------------------


def _enumerated_pair_moments(mdp, theta, baseline):
    """Mean and tr Cov of ĝ₁ = ψ_t (G_t − b_t(s_t)) over (τ, t) ~ p(τ)·1[t < T(τ)]/E[T],
    listed trajectory by trajectory and step by step (no backward induction)."""
    enum = tabular.enumerate_trajectories(mdp)
    p = np.asarray(tabular.trajectory_probs(enum, theta))
    pool = enum.pool
    zeros = jnp.zeros_like(pool.reward)
    rtg = np.asarray(grads_mod.episode_weights(Estimator("reward_to_go"), pool, zeros, zeros))
    obs, act, mask = np.asarray(pool.obs), np.asarray(pool.action), np.asarray(pool.mask)
    score = jax.vmap(
        jax.grad(lambda th, o, a: networks.log_prob(tabular.softmax_policy(th, o), a)),
        in_axes=(None, 0, 0),
    )
    H, n = mask.shape
    scores = np.asarray(score(theta, obs.reshape(H * n, -1), act.reshape(-1))).reshape(H, n, -1)
    first, second, steps = 0.0, 0.0, 0.0
    for i in range(n):
        for t in range(H):
            if mask[t, i] == 0:
                continue
            s = int(obs[t, i].argmax())
            g = scores[t, i] * (rtg[t, i] - (0.0 if baseline is None else float(baseline[t, s])))
            first = first + p[i] * g
            second += p[i] * float(g @ g)
            steps += p[i]
    mean = first / steps
    return mean, second / steps - float(mean @ mean)


@pytest.mark.parametrize("with_baseline", [False, True])
def test_decomposition_components_sum_to_enumerated_total(with_baseline):
    """Σ_s + Σ_a + Σ_τ (backward induction) equals tr Cov ĝ₁ listed over every (τ, t),
    and E ĝ₁ = ∇J/E[T], to 1e-10 in float64."""
    from jaxpg.variance import decomposition

    with jax.enable_x64(True):
        mdp, theta, v_wrong = layered_setup(4)
        theta = jnp.asarray(theta)
        b = None
        if with_baseline:  # a time-dependent baseline that is not V^π
            b = jnp.asarray(np.random.default_rng(9).normal(size=(mdp.horizon, mdp.num_states)))
        ex = decomposition.exact_components(mdp, theta, b)
        mean, total = _enumerated_pair_moments(mdp, theta, b)
        parts = float(ex["state"] + ex["action"] + ex["trajectory"])
        assert abs(parts - total) < 1e-10 * max(1.0, total)
        np.testing.assert_allclose(np.asarray(ex["mean"]), mean, atol=1e-12)
        enum = tabular.enumerate_trajectories(mdp)
        p = tabular.trajectory_probs(enum, theta)
        mean_len = float(p @ jnp.sum(enum.pool.mask, axis=0))
        grad_j = np.asarray(tabular.exact_gradient(mdp, theta))
        np.testing.assert_allclose(mean, grad_j / mean_len, atol=1e-12)
        # Every component is a variance: non-negative exactly.
        assert min(float(ex["state"]), float(ex["action"]), float(ex["trajectory"])) >= -1e-12


def test_decomposition_exact_baseline_moves_only_the_action_term():
    """With b = V^π_t, Σ_a drops; Σ_s and Σ_τ do not depend on the baseline (exact)."""
    from jaxpg.variance import decomposition

    with jax.enable_x64(True):
        mdp, theta, _ = layered_setup(0)
        theta = jnp.asarray(theta)
        v = tabular.state_values(mdp, theta)
        none = decomposition.exact_components(mdp, theta)
        vpi = decomposition.exact_components(mdp, theta, v)
        assert abs(float(none["state"] - vpi["state"])) < 1e-12
        assert abs(float(none["trajectory"] - vpi["trajectory"])) < 1e-12
        assert float(vpi["action"]) < 0.5 * float(none["action"])


def test_decomposition_sampled_components_match_exact():
    """Nested continuations from saved gymnax states (float32, K = 10,000 pairs):
    every component and the removed part are within 4 SE of their exact values, and
    the components add up to the directly estimated total on the sample."""
    from jaxpg.variance import decomposition

    mdp, theta, v_wrong = layered_setup(0)
    with jax.enable_x64(True):
        th64 = jnp.asarray(theta)
        v_pi = np.asarray(tabular.state_values(mdp, th64))
        b_wrong = np.tile(v_wrong, (mdp.horizon, 1))
        exact = {
            "none": decomposition.exact_components(mdp, th64),
            "vpi": decomposition.exact_components(mdp, th64, v_pi),
            "wrong": decomposition.exact_components(mdp, th64, b_wrong),
        }
        exact = {k: {c: float(x) for c, x in v.items() if c != "mean"} for k, v in exact.items()}
    env = tabular.TabularEnv(mdp)
    pairs = decomposition.sample_pairs(
        jax.random.key(11),
        env,
        env.default_params,
        tabular.softmax_policy,
        jnp.asarray(theta, jnp.float32),
        10_000,
    )
    t, s = np.asarray(pairs.time), np.asarray(pairs.obs).argmax(-1)
    tables = {"none": np.zeros_like(v_pi), "vpi": v_pi, "wrong": b_wrong}
    got = decomposition.components(pairs, {k: tab[t, s] for k, tab in tables.items()}, groups=20)
    checks = [("state", exact["none"]["state"]), ("trajectory", exact["none"]["trajectory"])]
    for b in tables:
        checks.append((f"action/{b}", exact[b]["action"]))
        checks.append((f"total/{b}", exact[b]["total"]))
    checks.append(("removed/vpi", exact["none"]["action"] - exact["vpi"]["action"]))
    for key, value in checks:
        z = (got[key]["value"] - value) / got[key]["se"]
        assert abs(z) < 4, (key, got[key], value)
    for b in tables:
        assert abs(got[f"total/{b}"]["value"] - got[f"total_direct/{b}"]["value"]) < 1e-9


# --- R4: the 1/N law on disjoint batches ------------------------------------------------


def _fake_stream(data):
    """``sample``/``grads_of`` pair that serves rows of ``data`` [K, d] in order."""
    pos = {"i": 0}

    def sample(key, n):
        i = pos["i"]
        pos["i"] = i + n
        return data[i : i + n]

    return sample, lambda rows: {"g": rows}


def test_law_stream_keeps_disjoint_batch_means_whatever_the_chunk():
    """Batch means for N below and above the chunk, and tr Σ₁ from streamed sums,
    equal the direct NumPy values."""
    from jaxpg.variance import law

    data = np.random.default_rng(0).standard_t(3, size=(256, 5)) + 2.0
    plan = law.batch_plan(256, (1, 2, 8, 32, 64), 16)
    assert plan == {1: 16, 2: 16, 8: 16, 32: 8, 64: 4}
    acc = law.stream_pool(jax.random.key(0), *_fake_stream(data), 256, 16, plan)["g"]
    for n, m in plan.items():
        want = data[: m * n].reshape(m, n, -1).mean(1)
        np.testing.assert_allclose(acc["means"][n], want, rtol=1e-12)
    rows = law.law_rows({"g": acc}, rng=np.random.default_rng(0), resamples=50)
    tr1 = np.var(data, axis=0, ddof=1).sum()
    assert all(abs(r["tr_sigma1"] - tr1) < 1e-9 * tr1 for r in rows)
    with pytest.raises(ValueError, match="powers of two"):
        law.batch_plan(256, (3,), 16)
    with pytest.raises(ValueError, match="leaves 1"):
        law.batch_plan(256, (256,), 16)


def test_law_holds_for_independent_rows_and_fails_for_duplicated_ones():
    """Independent rows: every N·tr Σ_N/tr Σ₁ interval covers 1 and R4 passes.
    Each row repeated twice (dependent neighbours): the ratio is ≈ 2 for N ≥ 2,
    every interval excludes 1, and R4 fails."""
    from jaxpg.variance import law

    rng = np.random.default_rng(1)
    iid = rng.normal(size=(8192, 20)) * np.linspace(0.5, 2.0, 20)
    dup = np.repeat(iid[:4096], 2, axis=0)
    plan = law.batch_plan(8192, (4, 16, 64, 256), 128)
    for data, expect in ((iid, 1.0), (dup, 2.0)):
        acc = law.stream_pool(jax.random.key(0), *_fake_stream(data), 8192, 1024, plan)
        rows = law.law_rows(acc, rng=np.random.default_rng(2), resamples=300)
        for r in rows:
            assert r["ratio_lo"] <= expect <= r["ratio_hi"], r
        v = law.verdict(rows)["g"]
        assert v["pass"] == (expect == 1.0)
        if expect == 2.0:
            assert all(r["ratio_lo"] > 1.2 for r in rows)
