"""A two-step gymnax MDP whose policy gradient is computed exactly by enumeration.

States: 0 (start), 1 and 2 (second step). Obs is the one-hot state (size 3).
Step 0 in state 0: action a0 ∈ {0, 1} gives r0 = R0[a0] and moves to s1 = 1 + a0.
Step 1 in s1: action a1 gives r1 = R1[s1 − 1, a1] and terminates.
A tabular softmax policy, logits = obs @ θ (θ is [3, 2]), makes all four
trajectories enumerable, so E[estimate] and Cov[estimate] are exact.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

R0 = jnp.array([1.0, 0.0])
R1 = jnp.array([[0.0, 2.0], [3.0, 1.0]])


@struct.dataclass
class State(environment.EnvState):
    s: jax.Array
    time: int


@struct.dataclass
class Params(environment.EnvParams):
    max_steps_in_episode: int = 2


class TwoStep(environment.Environment):
    @property
    def default_params(self) -> Params:
        return Params()

    def step_env(self, key, state, action, params):
        a = jnp.asarray(action, jnp.int32)
        first = state.s == 0
        reward = jnp.where(first, R0[a], R1[jnp.clip(state.s - 1, 0, 1), a])
        s_next = jnp.where(first, 1 + a, 0)
        new = State(s=s_next, time=state.time + 1)
        terminated = ~first
        return self.get_obs(new), new, reward, terminated, {}

    def reset_env(self, key, params):
        st = State(s=jnp.int32(0), time=0)
        return self.get_obs(st), st

    def get_obs(self, state, params=None, key=None):
        return jax.nn.one_hot(state.s, 3)

    def is_terminated(self, state, params):
        return jnp.array(False)

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (3,), jnp.float32)


def policy_apply(theta, obs):
    return obs @ theta


def trajectories():
    """All (a0, a1) pairs with their states and rewards."""
    for a0, a1 in itertools.product((0, 1), (0, 1)):
        yield (0, 1 + a0), (a0, a1), (R0[a0], R1[a0, a1])


def exact_objective(theta, gamma=1.0):
    """J(θ) = Σ_τ p_θ(τ) Σ_t γ^t r_t."""
    logp = jax.nn.log_softmax(theta, axis=-1)
    total = 0.0
    for (s0, s1), (a0, a1), (r0, r1) in trajectories():
        p = jnp.exp(logp[s0, a0] + logp[s1, a1])
        total = total + p * (r0 + gamma * r1)
    return total


def exact_moments(theta, weight_fn):
    """Exact mean and covariance of the per-trajectory estimate Σ_t ∇log π(a_t|s_t)·w_t.

    ``weight_fn((r0, r1), (s0, s1)) -> (w0, w1)``.
    """
    logp_fn = lambda th, s, a: jax.nn.log_softmax(th, axis=-1)[s, a]  # noqa: E731
    grad_logp = jax.grad(logp_fn)
    logp = jax.nn.log_softmax(theta, axis=-1)
    probs, grads = [], []
    for (s0, s1), (a0, a1), rewards in trajectories():
        w0, w1 = weight_fn(rewards, (s0, s1))
        g = grad_logp(theta, s0, a0) * w0 + grad_logp(theta, s1, a1) * w1
        probs.append(jnp.exp(logp[s0, a0] + logp[s1, a1]))
        grads.append(g.reshape(-1))
    p = jnp.stack(probs)
    g = jnp.stack(grads)
    mean = p @ g
    centered = g - mean
    cov = (centered * p[:, None]).T @ centered
    return mean, cov
