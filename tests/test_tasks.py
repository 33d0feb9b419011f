"""The built-in sequence task: the scorer, the episode shape, the registered id."""

import jax
import jax.numpy as jnp
import pytest

import jaxpg
from jaxpg import envs
from jaxpg.tasks.sequence import SequenceTask


def _episode(env, params, key, choose):
    """Run one episode with ``choose(state) -> token``; return rewards and done flags."""
    obs, state = env.reset(key, params)
    rewards, dones = [], []
    for t in range(env.length):
        obs, state, r, term, trunc, _ = env.step(
            jax.random.fold_in(key, t), state, choose(state), params
        )
        rewards.append(float(r))
        dones.append(bool(term))
    return rewards, dones


def test_perfect_policy_scores_one_and_rewards_only_at_the_end():
    env, params = envs.make_env("Sequence-v0")
    assert isinstance(env, SequenceTask) and (env.vocab, env.length) == (8, 8)
    perfect = lambda s: (s.prev + s.step_size) % env.vocab  # noqa: E731
    rewards, dones = _episode(env, params, jax.random.key(0), perfect)
    assert rewards == [0.0] * 7 + [1.0]
    assert dones == [False] * 7 + [True]


def test_scorer_counts_tokens_that_follow_the_rule():
    env = SequenceTask(vocab=5, length=4)
    params = env.default_params
    # Prompt k = 2, first token s = 1: the rule wants 3, 0, 2, 4. Emit 3, 1, 3, 0:
    # 3 follows 1 (ok), 1 after 3 wants 0 (no), 3 after 1 (ok), 0 after 3 wants 0 (ok):
    # 3 of 4 → reward 0.75.
    obs, state = env.reset(jax.random.key(0), params)
    state = state.replace(step_size=jnp.int32(2), prev=jnp.int32(1))
    for t, token in enumerate([3, 1, 3, 0]):
        obs, state, r, term, trunc, _ = env.step(jax.random.key(t), state, token, params)
    assert float(r) == pytest.approx(0.75) and bool(term)  # (jaxpg.envs drops trunc here)
    assert obs.shape == (2 * 5 + 4,)


def test_random_policy_scores_one_over_v_and_config_accepts_the_id():
    cfg = jaxpg.Config(
        env="Sequence-v0", estimator="reinforce", num_envs=256, total_timesteps=256 * 8
    )
    # lr tiny: the first update's rollout is the (near-)uniform initial policy.
    out = jax.jit(jaxpg.make_train(cfg))(jax.random.key(0))
    ret = float(out.metrics["episode_return"][0])
    # Each token is right with probability 1/8; the mean of 256 × 8 tokens has
    # SE √(1/8·7/8 / 2048) = 0.0073: within 4 SE of 0.125.
    assert abs(ret - 0.125) < 4 * 0.0073
    assert float(out.metrics["episode_length"][0]) == 8.0
    with pytest.raises(ValueError, match="vocab"):
        SequenceTask(vocab=1)
