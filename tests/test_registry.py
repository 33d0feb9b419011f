"""Estimators and update kinds from outside (jaxpg.estimators.register, jaxpg.updates),
and the public per-batch gradient (jaxpg.estimators.batch_gradient)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpg
from jaxpg import envs, estimators, returns, rollout, updates
from jaxpg.runspec import make_runspec
from jaxpg.updates import common
from jaxpg.variance import gradients as vgrad
from jaxpg.variance import tabular
from tests import tiny_mdp


@pytest.fixture
def registry():
    """Restore the registry after a test that registers estimators."""
    saved = dict(estimators.REGISTRY)
    yield estimators.REGISTRY
    estimators.REGISTRY.clear()
    estimators.REGISTRY.update(saved)


def half_rtg(reward, values, next_values, terminated, truncated, *, gamma, lam):
    """Ψ_t = G_t / 2: reward-to-go at half the step (a registered estimator in one line)."""
    del values, next_values, lam
    g = returns.reward_to_go(reward, jnp.zeros_like(reward), terminated, truncated, gamma=gamma)
    return estimators.Weights(0.5 * g, None)


# -- the registry -------------------------------------------------------------------------
def test_rows_have_keyword_fields():
    trpo = estimators.info("trpo")
    assert trpo.update is updates.TRUST_REGION and trpo.line_search and trpo.critic
    assert estimators.info("ppo").update is updates.EPOCHS
    assert estimators.info("reinforce").update is updates.STEP
    assert estimators.info("grpo").grouped and estimators.info("grpo").length_scaled
    assert tuple(jaxpg.ESTIMATORS) == tuple(estimators.REGISTRY)
    assert vgrad.KINDS is estimators.ESTIMATORS  # the variance tools read the one registry


def test_register_then_config_update_and_variance_accept_it(registry):
    row = estimators.register("half_rtg", half_rtg, critic=False, episodic=True, update="step")
    assert row.update is updates.STEP
    assert "half_rtg" in jaxpg.ESTIMATORS and "half_rtg" in vgrad.KINDS
    cfg = jaxpg.Config(estimator="half_rtg", num_envs=4, hidden_sizes=(8,), total_timesteps=8)
    assert cfg.rollout_mode == "episodes" and not cfg.uses_critic
    state = jaxpg.make_init(cfg, tiny_mdp.TwoStep())(jax.random.key(0))
    new, metrics = jaxpg.make_update(cfg, tiny_mdp.TwoStep())(state, cfg.hparams())
    assert int(new.update_step) == 1 and np.isfinite(float(metrics["loss"]))
    # Half of reward_to_go's gradient, trajectory by trajectory (same keys, same pool).
    mdp = tabular.two_step_refund()
    env = tabular.TabularEnv(mdp)
    theta = jnp.zeros((mdp.num_states, mdp.num_actions))
    args = (jax.random.key(3), env, env.default_params, tabular.softmax_policy, theta, 16)
    half = vgrad.per_trajectory_gradients(*args, estimator="half_rtg")
    full = vgrad.per_trajectory_gradients(*args, estimator="reward_to_go")
    np.testing.assert_allclose(half, 0.5 * full, rtol=1e-6, atol=1e-7)


def test_a_sweep_over_lr_trains_a_registered_estimator(registry):
    estimators.register("half_rtg", half_rtg, critic=False, episodic=True, update="step")
    cfg = jaxpg.Config(estimator="half_rtg", num_envs=4, hidden_sizes=(8,), total_timesteps=32)
    train = jaxpg.make_train(cfg, tiny_mdp.TwoStep())
    out = jax.jit(jax.vmap(train, in_axes=(None, 0)))(
        jax.random.key(0), cfg.hparams(lr=[1e-3, 1e-2])
    )
    p = out.state.params["policy"]
    first = jax.tree.leaves(jax.tree.map(lambda x: x[0], p))
    second = jax.tree.leaves(jax.tree.map(lambda x: x[1], p))
    assert any(not np.allclose(a, b) for a, b in zip(first, second, strict=True))


def test_register_refuses_bad_rows(registry):
    with pytest.raises(ValueError, match="'ppo' is already registered.*overwrite=True"):
        estimators.register("ppo", half_rtg, critic=True, episodic=False, update="epochs")
    with pytest.raises(ValueError, match="update='sgd' is invalid: allowed: step, epochs"):
        estimators.register("x", half_rtg, critic=False, episodic=True, update="sgd")
    with pytest.raises(ValueError, match="option 'clip' is unknown; allowed: normalize"):
        estimators.register("x", half_rtg, critic=False, episodic=True, update="step", clip=True)
    with pytest.raises(ValueError, match="critic=1 is invalid: must be True or False"):
        estimators.register("x", half_rtg, critic=1, episodic=True, update="step")
    with pytest.raises(ValueError, match="needs critic=True or episodic=True"):
        estimators.register("x", half_rtg, critic=False, episodic=False, update="step")
    with pytest.raises(ValueError, match="'trust_region' fits a critic"):
        estimators.register("x", half_rtg, critic=False, episodic=True, update="trust_region")
    with pytest.raises(ValueError, match="name='a b' is invalid"):
        estimators.register("a b", half_rtg, critic=False, episodic=True, update="step")
    assert "x" not in estimators.REGISTRY
    # overwrite=True replaces a row, built-ins included.
    row = estimators.register(
        "reinforce", half_rtg, critic=False, episodic=True, update="step", overwrite=True
    )
    assert estimators.info("reinforce") is row


def test_unknown_estimator_names_the_field_and_the_register_route():
    with pytest.raises(ValueError, match=r"Config.estimator='a2c' is invalid: allowed: .*register"):
        jaxpg.Config(estimator="a2c")


def test_update_kind_checks_run_from_config():
    with pytest.raises(ValueError, match="Config.num_minibatches=3 is invalid: must divide"):
        jaxpg.Config(estimator="ppo", num_envs=4, num_steps=16, num_minibatches=3)
    with pytest.raises(ValueError, match="Config.shared_torso=True is invalid"):
        jaxpg.Config(estimator="npg", shared_torso=True)
    assert updates.EPOCHS.optimizer_steps(jaxpg.Config(num_epochs=3, num_minibatches=2)) == 6
    assert updates.STEP.optimizer_steps(jaxpg.Config()) == 1


# -- an update kind from outside ----------------------------------------------------------
def _two_steps(run, hp, carry, batch, key, normalizer):
    """Two full-batch Optax steps on the same batch; the metrics of the second."""
    del key
    carry, _ = common.sgd_step(run, hp, normalizer, carry, batch)
    return common.sgd_step(run, hp, normalizer, carry, batch)


TWO_STEPS = updates.STEP._replace(
    name="two_steps", step=_two_steps, optimizer_steps=lambda config: 2
)


def test_a_user_update_kind_takes_two_steps(registry):
    estimators.register("half_rtg_2", half_rtg, critic=False, episodic=True, update=TWO_STEPS)
    estimators.register("half_rtg", half_rtg, critic=False, episodic=True, update="step")
    fields = dict(
        num_envs=4, hidden_sizes=(8,), total_timesteps=8, optimizer="sgd", anneal_lr=False
    )
    two = jaxpg.Config(estimator="half_rtg_2", **fields)
    one = jaxpg.Config(estimator="half_rtg", **fields)
    env = tiny_mdp.TwoStep()
    state = jaxpg.make_init(one, env)(jax.random.key(0))
    moved_one, _ = jaxpg.make_update(one, env)(state, one.hparams())
    moved_two, _ = jaxpg.make_update(two, env)(state, two.hparams())
    assert make_runspec(two, env).steps_per_update == 2
    d1 = jax.tree.map(lambda a, b: a - b, moved_one.params, state.params)
    d2 = jax.tree.map(lambda a, b: a - b, moved_two.params, state.params)
    # Plain SGD on a batch whose policy barely changes in one tiny step: twice the step.
    for a, b in zip(jax.tree.leaves(d1), jax.tree.leaves(d2), strict=True):
        np.testing.assert_allclose(b, 2 * a, rtol=0.05, atol=1e-7)


# -- the per-batch gradient ---------------------------------------------------------------
def test_batch_gradient_by_hand():
    # Two complete TwoStep episodes at θ = 0 (π = ½ everywhere), obs one-hot states:
    #   episode 0: s = (0, 1), a = (0, 1), r = (1, 2), R = 3;
    #   episode 1: s = (0, 2), a = (1, 1), r = (0, 1), R = 1.
    # reinforce: ĝ = ½ Σ_i R_i Σ_t e(s_t, a_t), e(s, a) = row s of onehot(a) − ½:
    #   row 0: ½ (3·(½, −½) + 1·(−½, ½)) = (½, −½); row 1: ½·3·(−½, ½) = (−¾, ¾);
    #   row 2: ½·1·(−½, ½) = (−¼, ¼). Surrogate ½ Σ_i R_i Σ_t log ½ = 4 log ½.
    obs = jax.nn.one_hot(jnp.array([[0, 0], [1, 2]]), 3)
    action = jnp.array([[0, 1], [1, 1]])
    reward = jnp.array([[1.0, 0.0], [2.0, 1.0]])
    term = jnp.array([[False, False], [True, True]])
    old = jnp.full((2, 2), jnp.log(0.5))
    out = estimators.batch_gradient(
        "reinforce", tiny_mdp.policy_apply, jnp.zeros((3, 2)), obs, action, old, reward,
        term, jnp.zeros_like(term), gamma=1.0,
    )  # fmt: skip
    np.testing.assert_allclose(out.weights.psi, [[3.0, 1.0], [3.0, 1.0]])
    np.testing.assert_allclose(out.gradient, [[0.5, -0.5], [-0.75, 0.75], [-0.25, 0.25]])
    np.testing.assert_allclose(out.surrogate, 4 * np.log(0.5), rtol=1e-6)


def test_batch_gradient_is_the_trainers_first_step_direction():
    # PPO's clipped surrogate at θ = θ_old has the per-step-mean gradient of GAE weights.
    obs = jax.nn.one_hot(jnp.array([[0, 0], [1, 2]]), 3)
    action = jnp.array([[0, 1], [1, 1]])
    reward = jnp.array([[1.0, 0.0], [2.0, 1.0]])
    term = jnp.array([[False, False], [True, True]])
    v = jnp.array([[0.5, 0.2], [1.0, -1.0]])
    theta = jnp.array([[0.3, -0.1], [0.0, 0.2], [-0.4, 0.1]])
    old = jnp.take_along_axis(
        jax.nn.log_softmax(tiny_mdp.policy_apply(theta, obs)), action[..., None], -1
    )[..., 0]
    kw = dict(gamma=0.9, lam=0.8, normalize_advantages=False)
    args = (tiny_mdp.policy_apply, theta, obs, action, old, reward, term, jnp.zeros_like(term))
    ppo = estimators.batch_gradient("ppo", *args, v, jnp.zeros_like(v), **kw)
    vpg = estimators.batch_gradient("vpg", *args, v, jnp.zeros_like(v), **kw)
    np.testing.assert_allclose(ppo.weights.psi, vpg.weights.psi)
    # vpg on segments divides by Σ mask = 4 steps, as PPO's masked mean does.
    np.testing.assert_allclose(ppo.gradient, vpg.gradient, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("estimator", ["reinforce", "reward_to_go"])
def test_batch_gradient_mean_matches_the_exact_gradient(estimator):
    env, env_params = envs.make_env(tiny_mdp.TwoStep())
    spec = envs.env_spec(env, env_params)
    theta = jnp.array([[0.3, -0.2], [0.1, 0.4], [-0.5, 0.2]])

    def one(key):
        trans = rollout.rollout_episodes(
            key, tiny_mdp.policy_apply, theta, env, env_params, spec, 16, 2
        )
        out = estimators.batch_gradient(
            estimator, tiny_mdp.policy_apply, theta, trans.obs, trans.action, trans.log_prob,
            trans.reward, trans.terminated, trans.truncated, mask=trans.mask, gamma=1.0,
        )  # fmt: skip
        return out.gradient.reshape(-1)

    grads = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(5), 400))
    mean = jnp.mean(grads, 0)
    se = jnp.std(grads, 0, ddof=1) / np.sqrt(grads.shape[0])
    exact = jax.grad(tiny_mdp.exact_objective)(theta).reshape(-1)
    # Seeded; 4.5 standard errors per component (6 components).
    np.testing.assert_array_less(np.abs(mean - exact), 4.5 * se + 1e-6)


def test_batch_gradient_needs_values_for_a_critic():
    z = jnp.zeros((2, 1))
    with pytest.raises(ValueError, match="'vpg' has a critic: pass values and next_values"):
        estimators.batch_gradient(
            "vpg", tiny_mdp.policy_apply, jnp.zeros((3, 2)), jnp.zeros((2, 1, 3)),
            jnp.zeros((2, 1), jnp.int32), z, z, z > 0, z > 0, gamma=1.0,
        )  # fmt: skip


def test_an_entry_point_adds_an_estimator(registry, monkeypatch):
    import importlib.metadata

    row = estimators.Estimator(
        name="ep_half_rtg", weights=half_rtg, critic=False, episodic=True, update=updates.STEP
    )

    class EntryPoint:
        name = "ep_half_rtg"

        def load(self):
            return row

    def entry_points(group):
        return [EntryPoint()] if group == "jaxpg.estimators" else []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    monkeypatch.setattr(estimators, "_ENTRY_POINTS_LOADED", False)
    assert "ep_half_rtg" not in estimators.REGISTRY
    assert jaxpg.Config(estimator="ep_half_rtg", total_timesteps=10_000).estimator == "ep_half_rtg"
    assert estimators.info("ep_half_rtg") is row


def test_the_cli_imports_env_module_before_parsing_estimator(registry, tmp_path, monkeypatch):
    from jaxpg.cli import build_parser
    from jaxpg.commands.common import import_env_module

    (tmp_path / "my_registry_mod.py").write_text(
        "import jaxpg\nfrom tests.test_registry import half_rtg\n"
        "jaxpg.estimators.register('cli_half_rtg', half_rtg, critic=False, episodic=True,"
        " update='step', overwrite=True)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["train", "--estimator", "cli_half_rtg", "--env-module", "my_registry_mod"]
    import_env_module(argv)
    args = build_parser().parse_args(argv)
    assert args.estimator == "cli_half_rtg"


def test_the_env_module_pre_import_ignores_other_options():
    from jaxpg.commands.common import import_env_module

    import_env_module(["train", "--env", "MemoryChain-bsuite", "--env-modulex", "y"])  # no-op
