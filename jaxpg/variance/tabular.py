"""Small tabular MDPs with exact policy gradients, and a gymnax wrapper.

Conventions:

* A :class:`TabularMDP` has S states, A actions, an initial distribution
  ``p0[S]``, transitions ``P[S, A, S]``, deterministic rewards ``R[S, A]``
  (earned on the step that takes action a in state s), absorbing terminal
  states ``terminal[S]`` (entering one terminates the episode) and a horizon H
  (time limit: step H − 1 truncates).
* The policy is a tabular softmax, logits = onehot(s) @ θ with θ ``[S, A]``;
  observations are one-hot state vectors, so the same ``policy_apply`` serves
  the gymnax wrapper and the enumeration.
* :func:`exact_objective` is J_γ(θ) = E[Σ_{t<H} γ^t r_t] by backward induction;
  its ``jax.grad`` is the exact ∇J_γ, computed independently of any estimator.
* :func:`enumerate_trajectories` lists every trajectory as a padded
  time-major pool with its environment log-probability, so the exact mean and
  covariance of any per-trajectory estimator follow from the very code that
  computes the sampled gradients. Run these in float64
  (``jax.experimental.enable_x64``) for exact comparisons.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment, spaces

from jaxpg import estimators, groups, rollout
from jaxpg.variance import gradients

Array = jax.Array


class TabularMDP(NamedTuple):
    """A finite-horizon MDP (NumPy arrays; see the module docstring)."""

    p0: np.ndarray  # [S]
    P: np.ndarray  # [S, A, S]
    R: np.ndarray  # [S, A]
    terminal: np.ndarray  # [S] bool
    horizon: int

    @property
    def num_states(self) -> int:
        return int(self.P.shape[0])

    @property
    def num_actions(self) -> int:
        return int(self.P.shape[1])


def softmax_policy(theta: Array, obs: Array) -> Array:
    """Tabular softmax logits: onehot(s) @ θ, ``[..., S] -> [..., A]``."""
    return obs @ theta.astype(jnp.result_type(obs, theta))


def table_value(v: Array, obs: Array) -> Array:
    """Tabular critic V(s) = onehot(s) @ v, ``[..., S] -> [...]``."""
    return obs @ v.astype(jnp.result_type(obs, v))


def two_step_refund(refund: float = 5.0, bonus: float = 1.0) -> TabularMDP:
    """An MDP where reward-to-go has MORE variance than the total return.

    t = 0, state 0: action 1 earns +c and leads to state 1, action 0 earns 0 and
    leads to state 2. t = 1: in state 1 every action pays the refund −c, plus
    ``bonus``·a; in state 2 the reward is ``bonus``·a. Then state 3 (terminal).
    The return is bonus·a_1 whatever a_0 was, so the total-return weight at
    t = 1 is small, but the reward-to-go weight there is −c + bonus·a_1 in state 1:
    dropping the past reward removes the refund's partner (``docs/variance.md``,
    pitfall 12).
    """
    P = np.zeros((4, 2, 4))
    P[0, 1, 1] = P[0, 0, 2] = 1.0
    P[1, :, 3] = P[2, :, 3] = P[3, :, 3] = 1.0
    R = np.array([[0.0, refund], [-refund, -refund + bonus], [0.0, bonus], [0.0, 0.0]])
    return TabularMDP(np.array([1.0, 0, 0, 0]), P, R, np.array([0, 0, 0, 1], bool), 2)


def random_layered(
    seed: int = 0, layers: int = 3, width: int = 2, num_actions: int = 2, p_end: float = 0.2
) -> TabularMDP:
    """A random MDP whose states are ordered in layers (state ⇒ time).

    Layer l holds ``width`` states reachable only at time l, so a state-only
    critic can be exact (V(s) = V^π_t(s)); the last state is terminal and is
    entered with probability ``p_end`` from every state-action. Rewards lie on a
    grid of 0.5 so they are exact in float32.
    """
    rng = np.random.default_rng(seed)
    S = layers * width + 1
    end = S - 1
    P = np.zeros((S, num_actions, S))
    for l in range(layers):
        for s in range(l * width, (l + 1) * width):
            for a in range(num_actions):
                if l + 1 < layers:
                    q = rng.dirichlet(np.ones(width)) * (1.0 - p_end)
                    P[s, a, (l + 1) * width : (l + 2) * width] = q
                    P[s, a, end] = p_end
                else:
                    P[s, a, end] = 1.0
    P[end, :, end] = 1.0
    R = rng.integers(-4, 5, size=(S, num_actions)) / 2.0
    R[end] = 0.0
    p0 = np.zeros(S)
    p0[:width] = 1.0 / width
    terminal = np.zeros(S, bool)
    terminal[end] = True
    return TabularMDP(p0, P, R, terminal, layers)


# --- exact objective by backward induction -------------------------------------


def state_values(mdp: TabularMDP, theta: Array, gamma: float = 1.0) -> Array:
    """V^π_t(s) for t = 0..H−1 by backward induction, ``[H, S]``.

    Q_t(s, a) = R(s, a) + γ Σ_{s'} P(s'|s, a)(1 − terminal(s')) V_{t+1}(s'),
    V_t(s) = Σ_a π(a|s) Q_t(s, a), V_H = 0.
    """
    P = jnp.asarray(mdp.P, theta.dtype)
    R = jnp.asarray(mdp.R, theta.dtype)
    alive = 1.0 - jnp.asarray(mdp.terminal, theta.dtype)
    pi = jax.nn.softmax(theta, axis=-1)

    def back(v_next, _):
        q = R + gamma * jnp.einsum("sat,t->sa", P, alive * v_next)
        v = jnp.sum(pi * q, axis=-1)
        return v, v

    _, vs = jax.lax.scan(back, jnp.zeros(mdp.num_states, theta.dtype), None, length=mdp.horizon)
    return vs[::-1]


def exact_objective(mdp: TabularMDP, theta: Array, gamma: float = 1.0) -> Array:
    """J_γ(θ) = E[Σ_{t<H} γ^t r_t] = p0 · V_0."""
    return jnp.asarray(mdp.p0, theta.dtype) @ state_values(mdp, theta, gamma)[0]


def exact_gradient(mdp: TabularMDP, theta: Array, gamma: float = 1.0) -> Array:
    """∇_θ J_γ, flattened ``[S·A]`` (autodiff through the backward induction)."""
    return jax.grad(exact_objective, argnums=1)(mdp, theta, gamma).reshape(-1)


# --- enumeration ----------------------------------------------------------------


class Enumeration(NamedTuple):
    """Every trajectory of a tabular MDP as a padded pool."""

    pool: rollout.Transition  # [H, n, ...]
    log_p_env: np.ndarray  # [n] log p0(s_0) + Σ_t log P(s_{t+1}|s_t, a_t)


def enumerate_trajectories(mdp: TabularMDP, dtype=np.float64) -> Enumeration:
    """List all trajectories (state, action, next-state sequences) of ``mdp``."""
    S, A, H = mdp.num_states, mdp.num_actions, mdp.horizon
    partial = [([int(s)], [], float(np.log(mdp.p0[s]))) for s in np.flatnonzero(mdp.p0)]
    done = []
    for t in range(H):
        nxt = []
        for states, actions, lp in partial:
            s = states[-1]
            for a in range(A):
                for s2 in np.flatnonzero(mdp.P[s, a]):
                    item = (states + [int(s2)], actions + [a], lp + float(np.log(mdp.P[s, a, s2])))
                    (done if mdp.terminal[s2] or t + 1 == H else nxt).append(item)
        partial = nxt
    n = len(done)
    eye = np.eye(S, dtype=dtype)
    obs = np.zeros((H, n, S), dtype)
    final_obs = np.zeros((H, n, S), dtype)
    action = np.zeros((H, n), np.int32)
    reward = np.zeros((H, n), dtype)
    term = np.zeros((H, n), bool)
    trunc = np.zeros((H, n), bool)
    mask = np.zeros((H, n), dtype)
    for i, (states, actions, _) in enumerate(done):
        L = len(actions)
        for t in range(L):
            obs[t, i] = eye[states[t]]
            final_obs[t, i] = eye[states[t + 1]]
            action[t, i] = actions[t]
            reward[t, i] = mdp.R[states[t], actions[t]]
            mask[t, i] = 1.0
        term[L - 1, i] = bool(mdp.terminal[states[L]])
        trunc[L - 1, i] = not term[L - 1, i]
    zeros = np.zeros((H, n), dtype)
    pool = rollout.Transition(
        obs, action, zeros, reward, term, trunc, final_obs, mask, zeros, zeros
    )
    pool = jax.tree.map(jnp.asarray, pool)
    return Enumeration(pool, np.array([lp for _, _, lp in done]))


def trajectory_probs(enum: Enumeration, theta: Array) -> Array:
    """p_θ(τ) of every enumerated trajectory, ``[n]`` (sums to 1)."""
    logp = jax.nn.log_softmax(softmax_policy(theta, enum.pool.obs), axis=-1)
    logp_a = jnp.take_along_axis(logp, enum.pool.action[..., None], axis=-1)[..., 0]
    return jnp.exp(
        jnp.asarray(enum.log_p_env, theta.dtype) + jnp.sum(logp_a * enum.pool.mask, axis=0)
    )


class Moments(NamedTuple):
    mean: Array  # [d] E ĝ
    cov: Array  # [d, d] Cov ĝ (one trajectory)

    @property
    def trace(self) -> Array:
        return jnp.trace(self.cov)


def exact_moments(
    enum: Enumeration, theta: Array, est: gradients.Estimator, value_table: Array | None = None
) -> Moments:
    """Exact mean and per-trajectory covariance of an estimator by enumeration.

    E ĝ = Σ_τ p(τ) ĝ(τ), Cov ĝ = Σ_τ p(τ)(ĝ(τ) − E ĝ)(ĝ(τ) − E ĝ)ᵀ, where ĝ(τ)
    comes from :func:`jaxpg.variance.gradients.gradients_from_weights`.
    """
    vapply = table_value if value_table is not None else None
    grads = gradients.pool_gradients(
        softmax_policy, theta, enum.pool, [est], value_apply=vapply, value_params=value_table
    )[est.name]
    p = trajectory_probs(enum, theta)
    mean = p @ grads
    centred = grads - mean
    return Moments(mean, (centred * p[:, None]).T @ centred)


#: Ψ of each group kind for :func:`jaxpg.estimators.group_baseline`.
# Each group kind's per-trajectory weight: (group_baseline kind, c_i = 1/|τ_i|,
# conditioned on spread). gspo's gradient at θ_old is grpo's; cispo and dapo take the
# token mean (c_i = 1); dapo masks the groups without spread (jaxpg.llm.dapo).
_GROUP_BASELINE = {
    "rloo": ("loo", False, False),
    "grpo": ("std", True, False),
    "grpo_nostd": ("mean", False, False),
    "cispo": ("std", False, False),
    "gspo": ("std", True, False),
    "dapo": ("std", False, True),
}

#: The group kinds whose expectation :func:`exact_group_mean` enumerates exactly.
EXACT_GROUP_KINDS: tuple[str, ...] = tuple(_GROUP_BASELINE)


def exact_group_mean(
    enum: Enumeration, theta: Array, est: gradients.Estimator, max_groups: int = 2_000_000
) -> Array:
    """Exact E of a group estimator's per-group estimate, groups sharing their start state.

    A group is G trajectories from one start state s_0 ∼ p0, i.i.d. given s_0
    (as :func:`jaxpg.groups.rollout_groups` samples them). For each start
    state s, :func:`jaxpg.groups.exact_group_gradient` enumerates the n_sᴳ
    ordered groups of its trajectories (probabilities p(τ)/p0(s)); the result
    is Σ_s p0(s) E[ĝ | s_0 = s]. ``rloo`` gives ∇J and ``grpo_nostd``
    (1 − 1/G)∇J exactly; ``grpo`` is in general not a multiple of ∇J. For
    ``dapo``, whose normaliser counts only the groups with spread, the result
    is the many-groups limit E[g]/P(spread) (a pool of M groups differs by
    O(1/M)).

    Args:
      enum: :func:`enumerate_trajectories` of the MDP.
      theta: ``[S, A]`` policy parameters.
      est: a group kind with its ``group_size`` G and ``gamma``.
      max_groups: refuse to enumerate more than this many groups per start state.

    Returns:
      ``[S·A]`` the expectation of :func:`jaxpg.variance.gradients.group_means`'s rows.
    """
    gradients.check_estimator(est)
    if not est.grouped:
        raise ValueError(
            f"estimator={est.kind!r} is not a group kind; allowed: "
            f"{', '.join(gradients.GROUP_KINDS)} (use exact_moments)"
        )
    if est.kind not in _GROUP_BASELINE:
        raise ValueError(
            f"estimator={est.kind!r} has no exact group expectation here; allowed: "
            f"{', '.join(_GROUP_BASELINE)}"
        )
    pool = enum.pool
    zeros = jnp.zeros_like(pool.reward)
    ret = gradients.episode_weights(
        gradients.Estimator("reinforce", est.gamma), pool, zeros, zeros
    )[0]
    score = gradients.gradients_from_weights(softmax_policy, theta, pool, pool.mask)  # ∇log p(τ)
    lengths = jnp.sum(pool.mask, axis=0)
    probs = trajectory_probs(enum, theta)
    start = np.argmax(np.asarray(pool.obs[0]), axis=-1)
    (kind, per_length, on_spread), G = _GROUP_BASELINE[est.kind], est.group_size
    weight_fn = lambda r: estimators.group_baseline(r, G, kind)  # noqa: E731
    total = jnp.zeros(score.shape[1], score.dtype)
    spread = jnp.zeros((), score.dtype)
    for s in np.unique(start):
        idx = np.flatnonzero(start == s)
        if len(idx) ** G > max_groups:
            raise ValueError(
                f"group_size={G}: {len(idx)}^{G} groups from state {s} exceed "
                f"max_groups={max_groups}; allowed: a smaller G or MDP"
            )
        p_s = jnp.sum(probs[idx])
        p_cond = probs[idx] / p_s
        cond = groups.exact_group_gradient(
            p_cond, score[idx], ret[idx], lengths[idx], G, weight_fn, per_length
        )
        total = total + p_s * cond
        # P(no spread | s): all G returns equal (trajectories grouped by return).
        rets_s = np.asarray(ret[idx])
        same = sum(float(jnp.sum(p_cond[rets_s == v])) ** G for v in np.unique(rets_s))
        spread = spread + p_s * (1.0 - same)
    return total / spread if on_spread else total


# --- gymnax wrapper -------------------------------------------------------------


@struct.dataclass
class TabularState(environment.EnvState):
    s: jax.Array
    time: int


@struct.dataclass
class TabularParams(environment.EnvParams):
    max_steps_in_episode: int = 1


class TabularEnv(environment.Environment):
    """A gymnax ``Environment`` that samples a :class:`TabularMDP`.

    Observations are one-hot states (float32). ``terminated`` when a terminal
    state is entered; ``truncated`` (gymnax's ``is_truncated``) at the horizon.
    """

    def __init__(self, mdp: TabularMDP):
        super().__init__()
        self.mdp = mdp
        self._logP = jnp.log(jnp.asarray(mdp.P, jnp.float32))
        self._logp0 = jnp.log(jnp.asarray(mdp.p0, jnp.float32))
        self._R = jnp.asarray(mdp.R, jnp.float32)
        self._terminal = jnp.asarray(mdp.terminal)

    @property
    def default_params(self) -> TabularParams:
        return TabularParams(max_steps_in_episode=self.mdp.horizon)

    def get_obs(self, state: TabularState, params=None, key=None) -> Array:
        return jax.nn.one_hot(state.s, self.mdp.num_states, dtype=jnp.float32)

    def is_terminated(self, state: TabularState, params: Any) -> Array:
        return self._terminal[state.s]

    def step_env(self, key, state: TabularState, action, params):
        s2 = jax.random.categorical(key, self._logP[state.s, action])
        reward = self._R[state.s, action]
        new = TabularState(s=s2, time=state.time + 1)
        return self.get_obs(new), new, reward, self._terminal[s2], {}

    def reset_env(self, key, params):
        state = TabularState(s=jax.random.categorical(key, self._logp0), time=0)
        return self.get_obs(state), state

    @property
    def name(self) -> str:
        return "TabularMDP"

    @property
    def num_actions(self) -> int:
        return self.mdp.num_actions

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(self.mdp.num_actions)

    def observation_space(self, params) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (self.mdp.num_states,), jnp.float32)
