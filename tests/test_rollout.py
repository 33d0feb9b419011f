"""Rollouts on a counting environment whose final observations are known exactly."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

import jaxpg
from jaxpg import envs, estimators, rollout, update
from jaxpg.runspec import init_state, make_runspec


@struct.dataclass
class CState(environment.EnvState):
    count: jax.Array
    time: int


@struct.dataclass
class CParams(environment.EnvParams):
    max_steps_in_episode: int = 3
    terminal_count: int = 100  # count at which the episode truly terminates


class Counter(environment.Environment):
    """obs = [count]; each step adds 1 and pays reward 1. Truncates at the time limit,
    terminates when count reaches ``terminal_count``. Reset obs is [0]."""

    @property
    def default_params(self):
        return CParams()

    def step_env(self, key, state, action, params):
        new = CState(count=state.count + 1.0, time=state.time + 1)
        term = new.count >= params.terminal_count
        return self.get_obs(new), new, jnp.float32(1.0), term, {}

    def reset_env(self, key, params):
        st = CState(count=jnp.float32(0.0), time=0)
        return self.get_obs(st), st

    def get_obs(self, state, params=None, key=None):
        return jnp.array([state.count])

    def is_terminated(self, state, params):
        return state.count >= params.terminal_count

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0.0, 1e3, (1,), jnp.float32)


def segment(params, num_steps=5):
    env = Counter()
    spec = envs.env_spec(env, params)
    carry = rollout.reset_envs(jax.random.key(0), env, params, 2)
    policy = lambda p, obs: jnp.zeros(obs.shape[:-1] + (2,))  # noqa: E731
    _, trans = rollout.rollout_segment(
        jax.random.key(1), policy, None, env, params, spec, carry, num_steps
    )
    return trans


def test_truncation_keeps_true_final_observation():
    trans = segment(CParams(max_steps_in_episode=3))
    col = lambda x: np.asarray(x)[:, 0]  # noqa: E731
    # Steps 0..4: counts go 0→1, 1→2, 2→3 (time limit), reset 0→1, 1→2.
    np.testing.assert_array_equal(col(trans.obs)[:, 0], [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(col(trans.final_obs)[:, 0], [1, 2, 3, 1, 2])
    np.testing.assert_array_equal(col(trans.truncated), [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(col(trans.terminated), [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(col(trans.ep_return), [1, 2, 3, 1, 2])


def test_critic_bootstraps_from_final_observation_at_truncation():
    # V(obs) = 10·count through a real Value network with hand-set weights.
    cfg = jaxpg.Config(
        hidden_sizes=(1,), activation="relu", num_envs=2, num_steps=5, num_minibatches=1
    )
    agent = make_runspec(cfg, env=Counter(), env_params=CParams(max_steps_in_episode=3))
    value_params = {
        "params": {
            "torso": {"Dense_0": {"kernel": jnp.array([[1.0]]), "bias": jnp.zeros(1)}},
            "head": {"Dense_0": {"kernel": jnp.array([[10.0]]), "bias": jnp.zeros(1)}},
        }
    }
    trans = segment(CParams(max_steps_in_episode=3))
    v, nv = update.critic_values(agent, {"value": value_params}, trans)
    # At the truncation (t = 2) V(s'_2) = V([3]) = 30, not V(reset obs [0]) = 0.
    assert float(nv[2, 0]) == 30.0 and float(v[3, 0]) == 0.0
    w = estimators.weights(
        "baseline", trans.reward, v, nv, trans.terminated, trans.truncated, gamma=0.5, lam=1.0
    )
    # G_2 = 1 + 0.5·30 = 16; G_1 = 1 + 0.5·16 = 9; G_0 = 1 + 0.5·9 = 5.5.
    np.testing.assert_allclose(w.value_target[:3, 0], [5.5, 9.0, 16.0])
    # The segment's last step (t = 4, obs [1] → [2]) bootstraps from V([2]) = 20:
    # G_4 = 1 + 0.5·20 = 11; G_3 = 1 + 0.5·11 = 6.5.
    np.testing.assert_allclose(w.value_target[3:, 0], [6.5, 11.0])


def test_termination_does_not_bootstrap():
    params = CParams(max_steps_in_episode=50, terminal_count=2)
    trans = segment(params, num_steps=3)
    np.testing.assert_array_equal(np.asarray(trans.terminated)[:, 0], [0, 1, 0])
    np.testing.assert_array_equal(np.asarray(trans.truncated)[:, 0], [0, 0, 0])
    nv = jnp.full(trans.reward.shape, 100.0)  # would show up if bootstrapped
    g = jaxpg.returns.reward_to_go(trans.reward, nv, trans.terminated, trans.truncated, gamma=1.0)
    # G_1 = 1 (terminal); G_0 = 1 + 1 = 2; G_2 = 1 + 100 (segment end bootstraps).
    np.testing.assert_allclose(np.asarray(g)[:, 0], [2.0, 1.0, 101.0])


def test_episode_mode_masks_after_the_end():
    env = Counter()
    params = CParams(max_steps_in_episode=3)
    spec = envs.env_spec(env, params)
    policy = lambda p, obs: jnp.zeros(obs.shape[:-1] + (2,))  # noqa: E731
    trans = rollout.rollout_episodes(jax.random.key(0), policy, None, env, params, spec, 2, 5)
    np.testing.assert_array_equal(np.asarray(trans.mask)[:, 0], [1, 1, 1, 0, 0])
    assert float(jnp.sum(trans.reward * trans.mask)) == 6.0  # 3 steps × 2 envs


def test_step_with_reset_drawn_ahead_equals_gymnax_step():
    # gymnax's step splits its key into (step, reset) keys; given those, the
    # pre-drawn reset path reproduces env.step, through many episode ends.
    def fast_step(env, params, spec, key, state, action):
        k_step, k_reset = jax.random.split(key)
        reset = envs.reset_raw(k_reset, env, params)
        return envs.step_with_reset(k_step, env, params, spec, state, action, *reset)

    for env_id in ("CartPole-v1", "Acrobot-v1", "Breakout-MinAtar"):
        env, params = envs.make_env(env_id)
        spec = envs.env_spec(env, params)
        assert envs.has_standard_step(env)
        _, state = envs.reset(jax.random.key(0), env, params)
        fast = jax.jit(functools.partial(fast_step, env, params, spec))
        slow = jax.jit(lambda k, s, a, e=env, p=params, sp=spec: envs.step(k, e, p, sp, s, a))
        ended = 0
        for t in range(520):  # past Acrobot's 500-step limit
            key = jax.random.key(t)
            action = jnp.asarray(t % spec.action_dim, jnp.int32)
            a, b = fast(key, state, action), slow(key, state, action)
            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
                # Same ops; only XLA's fusion of the two programs may round differently.
                np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
            ended += int(a.terminated | a.truncated)
            state = a.state
        assert ended >= 1, env_id


def test_env_with_its_own_step_keeps_it():
    class Wrapped(Counter):
        def step(self, key, state, action, params=None):  # e.g. a logging wrapper
            return super().step(key, state, action, params)

    assert envs.has_standard_step(Counter())
    assert not envs.has_standard_step(Wrapped())
    cfg = jaxpg.Config(num_envs=2, num_steps=7, total_timesteps=14, num_minibatches=1)
    a = make_runspec(cfg, Counter())
    b = make_runspec(cfg, Wrapped())
    sa, sb = init_state(a, jax.random.key(0)), init_state(b, jax.random.key(0))
    _, ta = update.collect(a, sa, jax.random.key(1))
    _, tb = update.collect(b, sb, jax.random.key(1))
    # Counter's resets are deterministic, so both paths give the same rollout.
    np.testing.assert_array_equal(ta.obs, tb.obs)
    np.testing.assert_array_equal(ta.truncated, tb.truncated)
