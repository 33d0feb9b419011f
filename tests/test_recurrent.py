"""Recurrent policies (``network="gru"``): the state is carried through rollouts, zeroed
at episode starts, replayed exactly in the update, checkpointed, and learns a memory
task that a feed-forward policy provably cannot."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpg
from jaxpg import checkpoint, networks
from jaxpg import update as upd
from jaxpg.evaluate import make_evaluate
from jaxpg.runspec import init_state, make_runspec

GRU = dict(
    env="MemoryChain-bsuite", network="gru", hidden_sizes=(16,), num_envs=8, num_steps=8,
    num_minibatches=4, total_timesteps=8 * 8 * 6,
)  # fmt: skip


def assert_trees_equal(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_unroll_matches_a_python_loop_that_resets_after_each_end():
    cfg = jaxpg.Config(**GRU)
    run = make_runspec(cfg)
    model = run.model
    params = model.init(jax.random.key(0), jnp.zeros((1, 3)))
    T, B = 6, 3
    obs = jax.random.normal(jax.random.key(1), (T, B, 3))
    done = jnp.zeros((T, B), bool).at[2, 0].set(True).at[4, 1].set(True)
    h0 = jax.random.normal(jax.random.key(2), (B, 16))
    dist, v, h_after = networks.unroll(model, params, h0, obs, done)
    h = h0
    for t in range(T):
        d_t, v_t, h_next = model.step(params, h, obs[t])
        np.testing.assert_allclose(dist[t], d_t, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(v[t], v_t, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(h_after[t], h_next, rtol=1e-5, atol=1e-6)
        h = jnp.where(done[t][:, None], 0.0, h_next)
    # After env 0's episode ended at t=2, its t=3 output is that of a fresh state.
    fresh, _, _ = model.step(params, jnp.zeros((1, 16)), obs[3, :1])
    np.testing.assert_allclose(dist[3, 0], fresh[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("estimator", ["ppo", "vpg"])
def test_the_replay_reproduces_the_rollouts_log_probs(estimator):
    # lr = 0 and one minibatch: PPO's first ratio is exactly 1 only if replaying the
    # sequences from the carried state gives the acting policy's log-probabilities,
    # across updates (the state is carried from one segment to the next).
    cfg = jaxpg.Config(**{**GRU, "num_minibatches": 1, "num_epochs": 1, "estimator": estimator})
    run = make_runspec(cfg)
    state = init_state(run, jax.random.key(0))
    # Move the params off their init so that the state matters.
    state = state.replace(
        params=jax.tree.map(
            lambda x: x + 0.3 * jax.random.normal(jax.random.key(9), x.shape), state.params
        )
    )
    step = jax.jit(lambda s: upd.update(run, s, cfg.hparams(lr=0.0)))
    for _ in range(3):
        h0 = state.env.hidden
        _, k_roll, _ = jax.random.split(state.key, 3)
        _, trans = upd.collect(run, state, k_roll)
        dist, _, _ = networks.unroll(run.model, state.params, h0, trans.obs, trans.done)
        np.testing.assert_allclose(
            networks.log_prob(dist, trans.action), trans.log_prob, rtol=1e-5, atol=1e-6
        )
        state, m = step(state)
        if estimator == "ppo":
            assert abs(float(m["approx_kl"])) < 1e-6 and float(m["clip_frac"]) == 0.0
        # The carried state: nonzero, and zero exactly where the last step ended an episode.
        h = np.asarray(state.env.hidden)
        ended = np.asarray(trans.done[-1])
        assert np.all(h[ended] == 0.0) and np.all(np.abs(h[~ended]).sum(-1) > 0)


def test_bootstrap_values_continue_the_sequence():
    # V(s'_t) comes from one more step on final_obs from the state after s_t: where
    # the episode goes on, that is exactly V(s_{t+1}) of the replay.
    cfg = jaxpg.Config(**GRU)
    run = make_runspec(cfg)
    state = init_state(run, jax.random.key(1))
    _, trans = upd.collect(run, state, jax.random.key(2))
    values, next_values = upd.critic_values(run, state.params, trans, state.env.hidden)
    going_on = ~np.asarray(trans.done[:-1])
    np.testing.assert_allclose(
        np.asarray(next_values[:-1])[going_on], np.asarray(values[1:])[going_on], rtol=1e-5
    )


def test_ppo_minibatches_are_whole_env_sequences():
    cfg = jaxpg.Config(**GRU)
    run = make_runspec(cfg)
    T, B = 8, 8
    batch = upd.Batch(
        obs=jnp.arange(T * B, dtype=jnp.float32).reshape(T, B, 1),
        action=jnp.zeros((T, B), jnp.int32),
        old_log_prob=jnp.zeros((T, B)),
        psi=jnp.zeros((T, B)),
        value_target=jnp.zeros((T, B)),
        mask=jnp.ones((T, B)),
        hidden0=jnp.arange(B, dtype=jnp.float32)[:, None] * jnp.ones((B, 16)),
        done=jnp.zeros((T, B), bool),
    )
    mb = upd._sequence_minibatches(run, batch, jax.random.key(0))
    assert mb.obs.shape == (4, T, 2, 1) and mb.hidden0.shape == (4, 2, 16)
    cols = np.asarray(mb.obs[..., 0]) % B  # each minibatch column is one env's sequence
    assert np.all(cols == cols[:, :1, :])
    np.testing.assert_array_equal(cols[:, 0, :], np.asarray(mb.hidden0[..., 0]))
    assert sorted(cols[:, 0, :].ravel().tolist()) == list(range(B))


@pytest.mark.parametrize(
    "estimator, extra",
    [("reinforce", {}), ("rloo", {"group_size": 2}), ("baseline", {})],
)
def test_episode_estimators_train_with_a_gru(estimator, extra):
    cfg = jaxpg.Config(**{**GRU, "estimator": estimator, "total_timesteps": 8 * 1000 * 2}, **extra)
    out = jax.jit(jaxpg.make_train(cfg))(jax.random.key(0))
    assert np.all(np.isfinite(np.asarray(out.metrics["loss"])))
    assert out.state.env.hidden is None or out.state.env.hidden.shape == (8, 16)


def test_bad_recurrent_configs_are_refused_before_anything_runs():
    with pytest.raises(ValueError, match="network.*'gru' shares its recurrent torso"):
        jaxpg.Config(**{**GRU, "estimator": "trpo"})
    with pytest.raises(ValueError, match="num_minibatches.*must divide num_envs=8"):
        jaxpg.Config(**{**GRU, "num_minibatches": 16, "num_steps": 32})


def test_checkpoint_round_trip_and_resume_are_bitwise(tmp_path):
    cfg = jaxpg.Config(**GRU, normalize_obs=True)
    update, hp = upd.make_update(cfg), cfg.hparams()
    state = upd.make_init(cfg)(jax.random.key(0))
    for _ in range(2):
        state, _ = update(state, hp)
    path = checkpoint.save(tmp_path, state, cfg)
    restored, _ = checkpoint.restore(path, upd.make_init(cfg)(jax.random.key(0)), cfg)
    assert_trees_equal(restored, state)
    a, b = update(state, hp)[0], update(restored, hp)[0]
    assert_trees_equal(a, b)


def test_evaluation_runs_the_recurrent_policy_from_a_zero_state():
    cfg = jaxpg.Config(**GRU)
    out = jax.jit(jaxpg.make_train(cfg))(jax.random.key(0))
    for greedy in (False, True):
        res = make_evaluate(cfg, 6, greedy)(jax.random.key(1), out.state.params)
        assert res.lengths.shape == (6,) and np.all(np.asarray(res.lengths) == 6)


@pytest.mark.slow
def test_gru_solves_memory_chain_that_a_feed_forward_policy_cannot():
    """MemoryChain-bsuite shows the context bit at the first step(s) and rewards ±1 for
    repeating it at the last, where nothing in the observation depends on it: any
    feed-forward policy scores 0 in expectation; a recurrent one can score 1."""
    from jaxpg import presets

    gru = presets.get_preset("memorychain-gru").config
    ff = jaxpg.Config(**{**gru.to_dict(), "network": "mlp"})
    results = {}
    for name, cfg in (("gru", gru), ("mlp", ff)):
        train = jax.jit(jaxpg.make_train(cfg))
        evaluate = jax.jit(make_evaluate(cfg, 256))
        keys = jax.random.split(jax.random.key(0), 5)
        results[name] = [
            float(evaluate(jax.random.key(i), train(k).state.params).returns.mean())
            for i, k in enumerate(keys)
        ]
    assert min(results["gru"]) >= 0.9, results
    assert max(abs(r) for r in results["mlp"]) <= 0.25, results


def test_cli_trains_checkpoints_and_evaluates_a_gru(tmp_path):
    import json
    import subprocess
    import sys

    run = tmp_path / "run"
    base = [sys.executable, "-m", "jaxpg"]
    subprocess.run(
        [*base, "train", "--env", "MemoryChain-bsuite", "--network", "gru", "--hidden-sizes",
         "16", "--num-envs", "8", "--num-steps", "8", "--num-minibatches", "4",
         "--total-timesteps", "512", "--quiet", "--out", str(run)],
        check=True, timeout=300,
    )  # fmt: skip
    tree = checkpoint.read(checkpoint.list_checkpoints(run / "checkpoints")[-1][1])[0]
    assert np.asarray(tree["env"]["hidden"]).shape == (8, 16)
    proc = subprocess.run(
        [*base, "eval", str(run), "--episodes", "4", "--json"],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert json.loads(proc.stdout)["length_mean"] == 6.0
