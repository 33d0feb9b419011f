"""Running observation/reward normalisation: the statistics against NumPy oracles, the
on-policy rule inside an update, bitwise checkpoint round trips, frozen evaluation."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpg
from jaxpg import checkpoint, normalization
from jaxpg.evaluate import make_evaluate
from jaxpg.runspec import init_state, make_runspec
from jaxpg.update import make_update

TINY = dict(num_envs=4, num_steps=16, num_minibatches=2, total_timesteps=64 * 8)
BOTH = dict(normalize_obs=True, normalize_rewards=True)


def assert_trees_equal(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# -- the statistics -------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (3,), (2, 2, 3)])
def test_running_stats_match_numpy_over_all_unmasked_samples(shape):
    rng = np.random.default_rng(0)
    stats = normalization.RunningStats.zeros(shape)
    seen = []
    for size, scale in [(7, 1.0), (1, 3.0), (40, 0.1), (5, 100.0), (3, 1.0)]:
        x = (rng.normal(size=(size, 2) + shape) * scale + 5.0).astype(np.float32)
        mask = rng.random((size, 2)) < 0.7
        stats = normalization.update_stats(stats, jnp.asarray(x), jnp.asarray(mask))
        seen.append(x[mask])
    allx = np.concatenate(seen).astype(np.float64)
    assert float(stats.count) == len(allx)
    np.testing.assert_allclose(stats.mean, allx.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(stats.var, allx.var(axis=0), rtol=1e-4)


def test_an_all_masked_batch_changes_nothing_and_normalize_starts_as_identity():
    stats = normalization.RunningStats.zeros((2,))
    obs = jnp.array([[3.0, -40.0]])
    np.testing.assert_array_equal(normalization.normalize(stats, obs), obs)
    same = normalization.update_stats(stats, obs, jnp.zeros((1,)))
    assert_trees_equal(same, stats)
    stats = normalization.update_stats(stats, jnp.array([[0.0, 0.0], [2.0, 2.0]]), jnp.ones(2))
    z = normalization.normalize(stats, jnp.array([[2.0, 1e6]]))
    np.testing.assert_allclose(z, [[1.0, normalization.CLIP]], rtol=1e-6)  # (2-1)/1, clipped


def test_discounted_returns_and_reward_scale_match_a_python_loop():
    rng = np.random.default_rng(1)
    T, B, gamma = 12, 3, 0.9
    reward = rng.normal(size=(T, B)).astype(np.float32)
    done = rng.random((T, B)) < 0.25
    mask = np.ones((T, B), np.float32)
    mask[9:, 0] = 0.0  # env 0's episode ended: the rest is padding
    done[8, 0] = True
    ret0 = np.array([1.0, -2.0, 0.5], np.float32)
    expected, r = np.zeros((T, B)), ret0.astype(np.float64).copy()
    for t in range(T):
        r = reward[t] * mask[t] + gamma * r
        expected[t] = r
        r = np.where(done[t], 0.0, r)
    norm = normalization.RewardNorm(normalization.RunningStats.zeros(()), jnp.asarray(ret0))
    scaled, new = normalization.scale_rewards(
        norm, jnp.asarray(reward), jnp.asarray(done), jnp.asarray(mask), gamma
    )
    np.testing.assert_allclose(new.ret, r, rtol=1e-5)
    kept = expected[mask > 0]
    np.testing.assert_allclose(float(new.stats.var), kept.var(), rtol=1e-4)
    std = np.sqrt(kept.var() + normalization.EPS)
    np.testing.assert_allclose(scaled, np.clip(reward / std, -10, 10), rtol=1e-5)


# -- inside training --------------------------------------------------------------------


def test_the_update_optimises_with_the_statistics_its_rollout_used():
    # With lr = 0 and one minibatch, PPO's ratio is exactly 1 only if the loss sees
    # the observations exactly as the rollout's policy did (the statistics are added
    # after the optimisation). Updating them first would make approx_kl > 0.
    cfg = jaxpg.Config(**{**TINY, "num_minibatches": 1, "num_epochs": 1}, **BOTH)
    update = make_update(cfg)
    state = make_update_state(cfg)
    hp = cfg.hparams()._replace(lr=jnp.float32(0.0))  # lr 0 is refused by hparams()
    for _ in range(3):
        state, m = update(state, hp)
        assert float(m["approx_kl"]) == 0.0 and float(m["clip_frac"]) == 0.0
    assert float(state.obs_norm.count) == float(state.env_steps) == 3 * 64
    assert float(state.reward_norm.stats.count) == 3 * 64


def make_update_state(cfg):
    return init_state(make_runspec(cfg), jax.random.key(0))


def test_obs_statistics_equal_numpy_over_the_collected_observations():
    from jaxpg import update as upd

    cfg = jaxpg.Config(**TINY, normalize_obs=True)
    run = make_runspec(cfg)
    state = init_state(run, jax.random.key(3))
    hp = cfg.hparams()
    step = jax.jit(lambda s: upd.update(run, s, hp))
    seen = []
    for _ in range(3):
        # The rollout this update will draw: same key split and the same frozen stats.
        _, k_roll, _ = jax.random.split(state.key, 3)
        normed = run._replace(model=normalization.with_obs_norm(run.model, state.obs_norm))
        _, trans = upd.collect(normed, state, k_roll)
        seen.append(np.asarray(trans.obs).reshape(-1, 4))
        state, _ = step(state)
    allx = np.concatenate(seen).astype(np.float64)
    np.testing.assert_allclose(state.obs_norm.mean, allx.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(state.obs_norm.var, allx.var(0), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("estimator", ["reinforce", "vpg", "trpo", "rloo"])
def test_every_update_kind_trains_with_normalisation(estimator):
    extra = {"group_size": 2} if estimator == "rloo" else {}
    if estimator in ("reinforce", "rloo"):  # one whole episode (≤ 500 steps) per env
        extra["total_timesteps"] = 2 * 4 * 500
    cfg = jaxpg.Config(estimator=estimator, **{**TINY, **extra}, **BOTH)
    out = jax.jit(jaxpg.make_train(cfg))(jax.random.key(0))
    assert float(out.state.obs_norm.count) > 0 and float(out.state.reward_norm.stats.count) > 0
    assert all(np.isfinite(np.asarray(out.metrics["loss"])))


def test_vmapped_seeds_carry_their_own_statistics():
    cfg = jaxpg.Config(**TINY, **BOTH)
    out = jax.jit(jax.vmap(jaxpg.make_train(cfg)))(jax.random.split(jax.random.key(0), 2))
    mean = np.asarray(out.state.obs_norm.mean)
    assert mean.shape == (2, 4) and not np.array_equal(mean[0], mean[1])


def test_checkpoint_round_trip_is_bitwise_and_resumes_exactly(tmp_path):
    cfg = jaxpg.Config(**TINY, **BOTH)
    update, hp = make_update(cfg), cfg.hparams()
    state = make_update_state(cfg)
    for _ in range(3):
        state, _ = update(state, hp)
    path = checkpoint.save(tmp_path, state, cfg)
    restored, _ = checkpoint.restore(path, make_update_state(cfg), cfg)
    assert_trees_equal(restored, state)
    a, b = state, restored
    for _ in range(2):
        a, _ = update(a, hp)
        b, _ = update(b, hp)
    assert_trees_equal(a, b)
    # A checkpoint of a run without normalisation does not restore into one with it.
    plain = jaxpg.Config(**TINY)
    other = checkpoint.save(tmp_path / "plain", make_update_state(plain), plain)
    with pytest.raises(checkpoint.IncompatibleCheckpointError, match="normalize_obs"):
        checkpoint.restore(other, state, cfg)


def test_evaluation_uses_the_trained_statistics_frozen():
    cfg = jaxpg.Config(**TINY, **BOTH)
    out = jax.jit(jaxpg.make_train(cfg))(jax.random.key(0))
    evaluate = jax.jit(make_evaluate(cfg, 8))
    key = jax.random.key(5)
    first = evaluate(key, out.state.params, out.state.obs_norm)
    again = evaluate(key, out.state.params, out.state.obs_norm)
    assert_trees_equal(first, again)
    # Other statistics act differently (the policy really reads them).
    shifted = out.state.obs_norm.replace(mean=out.state.obs_norm.mean + 1.0)
    other = evaluate(key, out.state.params, shifted)
    assert not np.array_equal(np.asarray(first.lengths), np.asarray(other.lengths))
    with pytest.raises(ValueError, match="obs_norm: this config has normalize_obs=True"):
        make_evaluate(cfg, 2)(key, out.state.params)


def test_cli_trains_checkpoints_and_evaluates_a_normalised_run(tmp_path):
    run = tmp_path / "run"
    base = [sys.executable, "-m", "jaxpg"]
    args = ["--total-timesteps", "1024", "--num-envs", "4", "--num-steps", "16", "--quiet"]
    flags = ["--normalize-obs", "--normalize-rewards", "--checkpoint-every", "4"]
    subprocess.run([*base, "train", *args, *flags, "--out", str(run)], check=True, timeout=300)
    ckpts = checkpoint.list_checkpoints(run / "checkpoints")
    tree = checkpoint.read(ckpts[-1][1])[0]
    assert float(np.asarray(tree["obs_norm"]["count"])) == 1024
    proc = subprocess.run(
        [*base, "eval", str(run), "--episodes", "4", "--json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert json.loads(proc.stdout)["episodes"] == 4
