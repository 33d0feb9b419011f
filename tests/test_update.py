"""The compiled update: every estimator and action space, recompile guard, train under vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpg
from jaxpg.config import ESTIMATORS

SMALL = dict(
    num_envs=4,
    num_steps=16,
    total_timesteps=4 * 16 * 2,
    num_minibatches=2,
    num_epochs=2,
    hidden_sizes=(16,),
)


def finite(tree):
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_every_estimator_updates_cartpole(estimator):
    fields = dict(SMALL)
    entry = jaxpg.estimators.info(estimator)
    if entry.episodic:  # one whole 500-step episode per env
        fields["total_timesteps"] = 4 * 500
    if entry.grouped:  # two start states, two episodes each
        fields["group_size"] = 2
    cfg = jaxpg.Config(estimator=estimator, **fields)
    state = jaxpg.make_init(cfg)(jax.random.key(0))
    new, metrics = jaxpg.make_update(cfg)(state, cfg.hparams())
    assert int(new.update_step) == 1
    assert finite(new.params) and finite(
        {k: v for k, v in metrics.items() if k != "episode_return"}
    )
    moved = jax.tree.map(lambda a, b: jnp.any(a != b), new.params["policy"], state.params["policy"])
    assert any(jax.tree.leaves(moved)), "the policy did not change"
    if cfg.rollout_mode == "episodes":  # one complete CartPole episode per env
        assert metrics["episodes"] == cfg.num_envs


@pytest.mark.parametrize(
    "env", ["Pendulum-v1", "MountainCarContinuous-v0", "Breakout-MinAtar", "Acrobot-v1"]
)
def test_other_envs_and_continuous_actions(env):
    cfg = jaxpg.Config(env=env, **SMALL)
    out = jax.jit(jaxpg.make_train(cfg))(jax.random.key(1))
    assert out.metrics["policy_loss"].shape == (2,)
    assert finite(out.state.params)


def test_update_does_not_recompile_for_new_hyperparameters():
    cfg = jaxpg.Config(**SMALL)
    update = jaxpg.make_update(cfg)
    state = jaxpg.make_init(cfg)(jax.random.key(0))
    state, _ = update(state, cfg.hparams())
    assert update._cache_size() == 1
    other = cfg.replace(
        lr=1e-2,
        gamma=0.9,
        lam=0.5,
        clip_eps=0.3,
        ent_coef=0.1,
        vf_coef=1.0,
        max_grad_norm=1.0,
        delta=0.05,
    ).hparams()
    new, _ = update(state, other)
    assert update._cache_size() == 1
    # ... and the new values did take effect.
    again, _ = update(state, cfg.hparams())
    diff = jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)), new.params, again.params)
    assert max(float(x) for x in jax.tree.leaves(diff)) > 0


def test_train_is_pure_under_jit_and_vmap():
    cfg = jaxpg.Config(**SMALL)
    train = jaxpg.make_train(cfg)
    keys = jax.random.split(jax.random.key(3), 3)
    batched = jax.jit(jax.vmap(train))(keys)
    single = jax.jit(train)(keys[1])
    np.testing.assert_allclose(
        batched.metrics["policy_loss"][1], single.metrics["policy_loss"], rtol=1e-5, atol=1e-6
    )
    pairs = zip(
        jax.tree.leaves(batched.state.params), jax.tree.leaves(single.state.params), strict=True
    )
    for a, b in pairs:
        np.testing.assert_allclose(a[1], b, rtol=1e-5, atol=1e-6)
    # vmapped hyperparameters: a batch of learning rates in one program.
    hps = jax.tree.map(lambda x: jnp.stack([x, x * 0 + 0.5 * x]), cfg.hparams())
    out = jax.jit(jax.vmap(train))(keys[:2], hps)
    assert out.metrics["lr"].shape == (2, 2)
    np.testing.assert_allclose(out.metrics["lr"][1, 0], 0.5 * cfg.lr, rtol=1e-6)


def test_metrics_contract():
    cfg = jaxpg.Config(**SMALL)
    out = jax.jit(jaxpg.make_train(cfg))(jax.random.key(0))
    for name in (
        "episode_return",
        "env_steps",
        "policy_loss",
        "value_loss",
        "entropy",
        "approx_kl",
        "clip_frac",
        "grad_norm",
        "lr",
    ):
        assert out.metrics[name].shape == (2,), name
    np.testing.assert_allclose(out.metrics["env_steps"], [64, 128])
    # lr anneals linearly: 1, then 1/2 of the base value.
    np.testing.assert_allclose(out.metrics["lr"], [cfg.lr, cfg.lr / 2], rtol=1e-6)


def test_user_supplied_environment_instance():
    from tests import tiny_mdp

    cfg = jaxpg.Config(estimator="reinforce", num_envs=8, total_timesteps=64)
    out = jax.jit(jaxpg.make_train(cfg, env=tiny_mdp.TwoStep()))(jax.random.key(0))
    # Two-step episodes; each return is r0 + γ... undiscounted sum in [0, 4].
    ret = np.asarray(out.metrics["episode_return"])
    assert np.all((ret >= 0) & (ret <= 4)) and out.metrics["episodes"][0] == 8


def test_weight_init_schemes():
    # orthogonal: the policy head has gain 0.01 (near-uniform start); lecun: flax's
    # default, head weights of scale 1/sqrt(fan_in). Parameter names are the same.
    heads = {}
    for scheme in ("orthogonal", "lecun"):
        cfg = jaxpg.Config(num_envs=2, num_steps=8, num_minibatches=2, weight_init=scheme)
        state = jaxpg.make_init(cfg)(jax.random.key(0))
        heads[scheme] = state.params["policy"]["params"]["head"]["Dense_0"]["kernel"]
    assert float(jnp.abs(heads["orthogonal"]).max()) < 0.02
    assert 0.05 < float(jnp.std(heads["lecun"])) < 0.25


def test_chunked_minibatch_gradient_equals_whole():
    # grad_chunk splits each PPO minibatch (256 samples) into chunks of 32 and
    # averages their gradients: the same update up to float rounding.
    base = jaxpg.Config(
        num_envs=16,
        num_steps=32,
        num_minibatches=2,
        num_epochs=2,
        total_timesteps=16 * 32 * 3,
        grad_chunk=256,
    )
    outs = []
    for chunk in (256, 32):
        cfg = base.replace(grad_chunk=chunk)
        out = jax.jit(jaxpg.make_train(cfg))(jax.random.key(3))
        outs.append(out)
    for a, b in zip(
        jax.tree.leaves(outs[0].state.params), jax.tree.leaves(outs[1].state.params), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    for name in ("policy_loss", "value_loss", "entropy", "approx_kl", "grad_norm"):
        np.testing.assert_allclose(
            outs[0].metrics[name], outs[1].metrics[name], rtol=1e-4, atol=1e-6
        )


def test_auto_grad_chunk_only_for_big_cpu_minibatches():
    from jaxpg.blocking import grad_chunk_size
    from jaxpg.runspec import make_runspec

    agent = make_runspec(jaxpg.Config(num_envs=4, num_steps=8, num_minibatches=2))
    cpu = jax.default_backend() == "cpu"
    assert grad_chunk_size(agent, 16384) == 16384
    assert grad_chunk_size(agent, 131072) == (8192 if cpu else 131072)
    assert grad_chunk_size(agent, 3 * 10**5) == (7500 if cpu else 3 * 10**5)
    fixed = make_runspec(jaxpg.Config(num_envs=4, num_steps=8, num_minibatches=2, grad_chunk=4))
    assert grad_chunk_size(fixed, 16) == 4


def test_chunked_apply_matches_whole_pass_with_padding():
    from jaxpg.blocking import chunked_apply
    from jaxpg.runspec import make_runspec

    agent = make_runspec(jaxpg.Config(num_envs=4, num_steps=8, num_minibatches=2))
    params = agent.model.init(jax.random.key(0), jnp.zeros((1, agent.spec.obs_size)))
    x = jax.random.normal(jax.random.key(1), (20_001, agent.spec.obs_size))  # 3 chunks, padded
    fn = lambda o: agent.model.value(params, o)  # noqa: E731
    got = jax.jit(lambda o: chunked_apply(agent, fn, o))(x)
    assert got.shape == (20_001,)
    np.testing.assert_allclose(got, fn(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("env", ["CartPole-v1", "Pendulum-v1"])
def test_trust_region_compiles_once_and_vmaps_over_seeds_and_delta(env):
    cfg = jaxpg.Config(estimator="trpo", env=env, **SMALL)
    update = jaxpg.make_update(cfg)
    init = jaxpg.make_init(cfg)
    state = init(jax.random.key(0))
    _, m1 = update(state, cfg.hparams())
    _, m2 = update(state, cfg.hparams(delta=1e-4, lr=3e-3))
    assert update._cache_size() == 1
    # Accepted steps stay inside the trust region on the batch; the critic also moved.
    for m, delta in ((m1, cfg.delta), (m2, 1e-4)):
        assert float(m["approx_kl"]) <= delta * (1 + 1e-4)
        assert float(m["accepted"]) in (0.0, 1.0)
    assert float(m2["approx_kl"]) < float(m1["approx_kl"])
    # One program for 2 seeds × 2 trust-region sizes.
    train = jaxpg.make_train(cfg)
    keys = jax.random.split(jax.random.key(1), 2)
    hps = cfg.hparams(delta=[1e-3, 5e-2])
    out = jax.jit(jax.vmap(train))(keys, hps)
    kl = np.asarray(out.metrics["approx_kl"])
    assert kl.shape == (2, 2)
    assert np.all(kl <= np.array([[1e-3], [5e-2]]) * (1 + 1e-4))
    assert finite(out.state.params)
