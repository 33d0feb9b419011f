"""PPO's optional details (``Config.value_clip_eps``, ``Config.target_kl``): each off by
default, each shown acting on a constructed case."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxpg
from jaxpg import grid, losses
from jaxpg.runspec import make_runspec
from jaxpg.updates import common

SMALL = dict(
    num_envs=4,
    num_steps=16,
    total_timesteps=4 * 16 * 2,
    num_minibatches=4,
    num_epochs=3,
    hidden_sizes=(16,),
)


def clipped_value_loss_np(v, v_old, ret, mask, eps):
    """CleanRL's formula, masked: ½ mean(max((v−R)², (v_old + clip(v−v_old, ±ε) − R)²))."""
    v_clip = v_old + np.clip(v - v_old, -eps, eps)
    sq = np.maximum((v - ret) ** 2, (v_clip - ret) ** 2)
    return 0.5 * np.sum(sq * mask) / np.sum(mask)


def test_clipped_value_loss_matches_formula_and_gradient():
    rng = np.random.default_rng(0)
    v, v_old, ret = (rng.normal(size=(5, 3)).astype(np.float32) for _ in range(3))
    mask = (rng.random((5, 3)) > 0.2).astype(np.float32)
    got = losses.clipped_value_loss(v, v_old, ret, mask, 0.1)
    np.testing.assert_allclose(got, clipped_value_loss_np(v, v_old, ret, mask, 0.1), rtol=1e-6)
    assert not np.isclose(float(got), float(losses.value_loss(v, ret, mask)))  # it clips here
    # Hand case: V = 2 moved 2 from V_old = 0, past R = 1; ε = 0.5 clips it to 0.5,
    # error (0.5 − 1)² = 0.25 < (2 − 1)² = 1: the plain term wins, ½·1 = 0.5, and
    # its gradient V − R = 1 flows.
    one = jnp.ones(1)
    f = lambda x: losses.clipped_value_loss(x, 0 * one, one, one, 0.5)  # noqa: E731
    assert float(f(2 * one)) == 0.5 and float(jax.grad(lambda x: f(x).sum())(2 * one)[0]) == 1.0
    # V = −2 moved away from R = 1: clipped −0.5 has error 2.25 < 9, plain wins too;
    # V = 0.8 from V_old = 3 (moved −2.2 toward R = 1): clipped 2.5, error 2.25 > 0.04,
    # the clipped term wins and its gradient is 0 (the clip is flat).
    g = lambda x: losses.clipped_value_loss(x, 3 * one, one, one, 0.5)  # noqa: E731
    np.testing.assert_allclose(float(g(0.8 * one)), 0.5 * 2.25, rtol=1e-6)
    assert float(jax.grad(lambda x: g(x).sum())(0.8 * one)[0]) == 0.0
    # ε = inf never clips: exactly the plain loss.
    assert float(losses.clipped_value_loss(v, v_old, ret, mask, jnp.inf)) == float(
        losses.value_loss(v, ret, mask)
    )


def test_loss_fn_uses_clipped_value_loss_when_on():
    cfg = jaxpg.Config(value_clip_eps=0.05, **SMALL)
    run = make_runspec(cfg)
    state = jaxpg.make_init(cfg)(jax.random.key(0))
    rng = np.random.default_rng(1)
    n = 12
    obs = jnp.asarray(rng.normal(size=(n, 4)), jnp.float32)
    v = np.asarray(run.model.value(state.params, obs))
    old_v = v + rng.normal(scale=0.2, size=n).astype(np.float32)
    ret = rng.normal(size=n).astype(np.float32)
    mask = np.ones(n, np.float32)
    batch = common.Batch(
        obs, jnp.zeros(n, jnp.int32), jnp.zeros(n), jnp.zeros(n), ret, mask, old_value=old_v
    )
    _, aux = common.loss_fn(run, state.params, batch, cfg.hparams(), 1.0)
    np.testing.assert_allclose(
        aux["value_loss"], clipped_value_loss_np(v, old_v, ret, mask, 0.05), rtol=1e-5
    )
    plain = 0.5 * np.mean((v - ret) ** 2)
    assert not np.isclose(float(aux["value_loss"]), plain)
    # Off (the default): the plain loss, and the batch carries no old values.
    off = make_runspec(jaxpg.Config(**SMALL))
    _, aux = common.loss_fn(off, state.params, batch._replace(old_value=None), cfg.hparams(), 1.0)
    np.testing.assert_allclose(aux["value_loss"], plain, rtol=1e-5)


@pytest.mark.parametrize("estimator", ["ppo", "vpg", "trpo"])
def test_value_clipping_trains_every_critic_kind(estimator):
    cfg = jaxpg.Config(estimator=estimator, value_clip_eps=0.2, **SMALL)
    state = jaxpg.make_init(cfg)(jax.random.key(0))
    new, m = jaxpg.make_update(cfg)(state, cfg.hparams())
    assert np.isfinite(float(m["value_loss"]))
    assert any(
        jax.tree.leaves(jax.tree.map(lambda a, b: jnp.any(a != b), new.params, state.params))
    )


def adam_count(opt_state) -> int:
    counts = optax.tree_utils.tree_get_all_with_path(opt_state, "count")
    return int(counts[0][1])


def test_target_kl_tiny_takes_exactly_one_step_per_update():
    cfg = jaxpg.Config(target_kl=1e-8, **SMALL)
    update = jaxpg.make_update(cfg)
    state = jaxpg.make_init(cfg)(jax.random.key(0))
    for u in range(1, 4):
        state, m = update(state, cfg.hparams())
        assert float(m["minibatch_steps"]) == 1.0
        assert adam_count(state.opt_state) == u  # skipped steps leave Adam's count alone


def test_target_kl_off_takes_every_step():
    cfg = jaxpg.Config(**SMALL)
    assert cfg.target_kl is None
    state = jaxpg.make_init(cfg)(jax.random.key(0))
    state, m = jaxpg.make_update(cfg)(state, cfg.hparams())
    assert float(m["minibatch_steps"]) == 3 * 4 and adam_count(state.opt_state) == 12


def test_target_kl_is_traced():
    """One program: a huge target takes every step, a tiny one a single step."""
    cfg = jaxpg.Config(target_kl=0.01, **SMALL)
    update = jaxpg.make_update(cfg)
    state = jaxpg.make_init(cfg)(jax.random.key(0))
    hps = cfg.hparams(target_kl=[1e-8, 1e9])
    states = jax.tree.map(lambda x: jnp.stack([x, x]), state)
    new, m = jax.vmap(update)(states, hps)
    np.testing.assert_array_equal(m["minibatch_steps"], [1.0, 12.0])
    # The run that never stops is the run without target_kl, step for step.
    off = jaxpg.Config(**SMALL)
    ref, _ = jaxpg.make_update(off)(state, off.hparams())
    for a, b in zip(jax.tree.leaves(ref.params), jax.tree.leaves(new.params), strict=True):
        np.testing.assert_allclose(a, b[1], rtol=1e-5, atol=1e-7)


def test_switched_fields_bad_input():
    with pytest.raises(ValueError, match=r"^Config.target_kl=0.0 is invalid: must be > 0"):
        jaxpg.Config(target_kl=0.0)
    with pytest.raises(ValueError, match=r"^Config.target_kl=0.01 is invalid: .*'epochs'"):
        jaxpg.Config(estimator="vpg", target_kl=0.01)
    with pytest.raises(ValueError, match=r"^Config.value_clip_eps=0.2 is invalid: .*no critic"):
        jaxpg.Config(estimator="reward_to_go", value_clip_eps=0.2)
    with pytest.raises(ValueError, match=r"^Config.value_clip_eps='a' is invalid: must be a numb"):
        jaxpg.Config(value_clip_eps="a")
    with pytest.raises(ValueError, match=r"Config.target_kl=None switches it off"):
        jaxpg.Config().hparams(target_kl=0.1)
    with pytest.raises(ValueError, match=r"Config.target_kl=None switches it off"):
        grid.check_grid(jaxpg.Config(), {"target_kl": [0.01, 0.02]})
    # On: None in a sweep means never stop (inf), as in Config.hparams.
    cfg = jaxpg.Config(target_kl=0.02)
    g = grid.check_grid(cfg, {"target_kl": [None, 0.01]})
    hp = grid.hparams_batch(cfg, g.traced_points, 1)
    np.testing.assert_array_equal(hp.target_kl, np.asarray([np.inf, 0.01], np.float32))
    assert float(jaxpg.Config().hparams().value_clip_eps) == np.inf


def test_recurrent_value_clipping_splits_old_values_by_sequence():
    cfg = jaxpg.Config(network="gru", value_clip_eps=0.1, **SMALL)
    state = jaxpg.make_init(cfg)(jax.random.key(0))
    new, m = jaxpg.make_update(cfg)(state, cfg.hparams())
    assert np.isfinite(float(m["value_loss"])) and int(new.update_step) == 1


def test_command_line_parses_switched_fields():
    import argparse

    from jaxpg.commands.common import add_config_options, config_overrides

    parser = argparse.ArgumentParser()
    add_config_options(parser)
    args = parser.parse_args(["--target-kl", "0.02", "--value-clip-eps", "off"])
    assert config_overrides(args) == {"target_kl": 0.02, "value_clip_eps": None}
    with pytest.raises(SystemExit):
        parser.parse_args(["--target-kl", "small"])


def test_scale_by_kl_adapts_by_the_rule():
    from jaxpg.optimizers import scale_by_kl

    tx = scale_by_kl(0.01)
    state = tx.init(None)
    u = {"w": jnp.ones(2)}
    # KL 0.03 > 2·0.01: ÷1.5; 0.01 in [d/2, 2d]: unchanged; 0.001 < d/2: ×1.5.
    for kl, want in [(0.03, 1 / 1.5), (0.01, 1 / 1.5), (0.001, 1.0)]:
        out, state = tx.update(u, state, approx_kl=jnp.float32(kl))
        np.testing.assert_allclose(float(state.kl_lr_scale), want, rtol=1e-6)
        np.testing.assert_allclose(out["w"], [want, want], rtol=1e-6)
    for _ in range(40):  # bounded: 1.5^40 would be 1e7
        _, state = tx.update(u, state, approx_kl=jnp.float32(0.0))
    assert float(state.kl_lr_scale) == 1e3
    off = scale_by_kl(jnp.inf)  # a sweep's None: never adapts
    out, s = off.update(u, off.init(None), approx_kl=jnp.float32(0.0))
    assert float(s.kl_lr_scale) == 1.0 and out["w"].tolist() == [1.0, 1.0]


def test_kl_adaptive_lr_in_training_is_traced():
    """Tiny target: the first step of an update sees KL 0 (×1.5), the other 11 see a
    KL far above 2d (÷1.5 each): 1.5^-10. A huge target: 12 × ×1.5."""
    cfg = jaxpg.Config(kl_adaptive_lr=0.01, **SMALL)
    update = jaxpg.make_update(cfg)
    state = jaxpg.make_init(cfg)(jax.random.key(0))
    states = jax.tree.map(lambda x: jnp.stack([x, x]), state)
    new, m = jax.vmap(update)(states, cfg.hparams(kl_adaptive_lr=[1e-12, 1e9]))
    scale = optax.tree_utils.tree_get(new.opt_state, "kl_lr_scale")
    np.testing.assert_allclose(scale, [1.5**-10, 1.5**12], rtol=1e-5)
    np.testing.assert_allclose(m["lr"], cfg.lr * np.asarray([1.5**-10, 1.5**12]), rtol=1e-5)
    with pytest.raises(ValueError, match=r"^Config.kl_adaptive_lr=0.01 is invalid: .*'epochs'"):
        jaxpg.Config(estimator="vpg", kl_adaptive_lr=0.01)
    with pytest.raises(ValueError, match=r"^Config.kl_adaptive_lr=0.01 needs jaxpg to build"):
        jaxpg.make_update(cfg, optimizer=optax.adam(1e-3))
