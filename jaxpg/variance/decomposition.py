"""Tucker-style variance decomposition by nested rollouts from saved env states.

The decomposed estimator is Tucker et al.'s (2018) single state-action sample
ĝ₁ = ψ(a|s)(Ĝ − b(s)), ψ = ∇_θ log π_θ(a|s): a pair (s, t) drawn from the
on-policy visitation distribution d(s, t) = P(s_t = s, alive at t)/E[T], a ~ π,
and Ĝ = Σ_k γ^k r_{t+k} the return-to-go of the random future τ. Here "state"
means the whole env state, time step included. With Q(s, a) = E[Ĝ | s, a] and
μ(s) = E_a ψ Q (the same for every baseline, since E_a ψ = 0), the law of total
variance splits tr Cov ĝ₁ exactly into

* Σ_s = Var_s μ(s) = E_s ‖μ(s)‖² − ‖E ĝ₁‖² (which states are visited);
* Σ_a(b) = E_s Var_a(ψ(Q − b)) = E_s[E_a ‖ψ‖²(Q − b)² − ‖μ(s)‖²] (which action
  is taken: the only term a state baseline b changes);
* Σ_τ = E_{s,a} ‖ψ‖² Var_τ(Ĝ | s, a) (the future after a: the trajectory).

An action-dependent baseline can remove at most Σ_a, never Σ_τ or Σ_s.

Estimation (:func:`sample_pairs`, :func:`components`): per trajectory i of a
fresh pool, t_i is uniform over its T_i steps, so averages weighted by T_i are
averages over d; from (s_i, t_i) two continuations share a₁ ~ π (returns q₁ₓ, q₁ᵧ)
and one starts from an independent a₂ ~ π (q₂). Unbiased per-state terms:

* ‖ψ₁‖²(q₁ₓ − q₁ᵧ)²/2 for the Σ_τ integrand;
* ‖ψ₁‖²(q₁ₓ − b)(q₁ᵧ − b) for E_a ‖ψ‖²(Q − b)²;
* (ψ₁·ψ₂) q₁ₓ q₂ for ‖μ(s)‖² (a₁, a₂ independent);
* ‖E ĝ₁‖² = ‖m‖² − Var(m), m the weighted mean of ψ₁((q₁ₓ + q₁ᵧ)/2 − b).

The components are differences of noisy terms and can come out negative; their
standard errors come from ``groups`` disjoint groups of states (batch means).
Σ_s + Σ_a + Σ_τ equals the directly estimated total E‖ψ₁(q − b)‖² − ‖E ĝ₁‖² on
every sample, because the per-state terms add up to it exactly.
:func:`exact_components` gives the exact values on a tabular MDP.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxpg import envs, networks
from jaxpg.variance import tabular

Array = jax.Array
COMPONENTS = ("state", "action", "trajectory", "total")


class Pairs(NamedTuple):
    """Visited pairs and their nested continuations, one per trajectory ``[K, ...]``."""

    length: Array  # [K] T_i, the episode length (the pair's weight)
    time: Array  # [K] t_i, uniform in [0, T_i)
    obs: Array  # [K, obs_size] the observation at t_i
    psi1: Array  # [K, d] ∇log π(a₁|s)
    psi2: Array  # [K, d] ∇log π(a₂|s)
    q1x: Array  # [K] return of the first continuation after a₁
    q1y: Array  # [K] return of the second continuation after a₁
    q2: Array  # [K] return of the continuation after a₂


def _visit(key, policy_apply, params, env, env_params, spec, horizon):
    """One episode; returns (state, obs, t, T) at a uniformly chosen step t < T."""
    k_reset, k_steps, k_pick = jax.random.split(key, 3)
    obs, state = envs.reset(k_reset, env, env_params)

    def body(carry, k):
        state, obs, alive = carry
        k_act, k_env = jax.random.split(k)
        action = jax.random.categorical(k_act, policy_apply(params, obs))
        out = envs.step(k_env, env, env_params, spec, state, action)
        done = jnp.logical_or(out.terminated, out.truncated)
        return (out.state, out.obs, jnp.logical_and(alive, ~done)), (state, obs, alive)

    carry = (state, obs, jnp.asarray(True))
    _, (states, obs_seq, alive) = jax.lax.scan(body, carry, jax.random.split(k_steps, horizon))
    length = jnp.sum(alive.astype(jnp.int32))
    t = jnp.minimum(jnp.floor(jax.random.uniform(k_pick) * length).astype(jnp.int32), length - 1)
    pick = lambda x: x[t]  # noqa: E731
    return jax.tree.map(pick, states), obs_seq[t], t, length


def _continue(key, first_action, state, obs, gamma, policy_apply, params, env, env_params, spec, L):
    """Σ_k γ^k r_k from ``state`` taking ``first_action`` first, then π, until done."""

    def body(carry, xs):
        k, first = xs
        state, obs, alive, disc, ret = carry
        k_act, k_env = jax.random.split(k)
        sampled = jax.random.categorical(k_act, policy_apply(params, obs))
        action = jnp.where(first, first_action, sampled)
        out = envs.step(k_env, env, env_params, spec, state, action)
        ret = ret + jnp.where(alive, disc * out.reward, 0.0)
        done = jnp.logical_or(out.terminated, out.truncated)
        return (out.state, out.obs, jnp.logical_and(alive, ~done), disc * gamma, ret), None

    first = jnp.arange(L) == 0
    init = (state, obs, jnp.asarray(True), jnp.asarray(1.0, jnp.float32), jnp.zeros(()))
    (_, _, _, _, ret), _ = jax.lax.scan(body, init, (jax.random.split(key, L), first))
    return ret


def _score(policy_apply, params, obs, action):
    g = jax.grad(lambda p: networks.log_prob(policy_apply(p, obs), action))(params)
    return ravel_pytree(g)[0]


def _one_pair(key, params, env_params, gamma, static):
    policy_apply, env, spec, horizon = static
    k_visit, k_a, k_c = jax.random.split(key, 3)
    state, obs, t, length = _visit(k_visit, policy_apply, params, env, env_params, spec, horizon)
    logits = policy_apply(params, obs)
    a1, a2 = jax.random.categorical(k_a, logits, shape=(2,))
    cont = lambda k, a: _continue(  # noqa: E731
        k, a, state, obs, gamma, policy_apply, params, env, env_params, spec, horizon
    )
    kx, ky, k2 = jax.random.split(k_c, 3)
    return Pairs(
        length,
        t,
        obs,
        _score(policy_apply, params, obs, a1),
        _score(policy_apply, params, obs, a2),
        cont(kx, a1),
        cont(ky, a1),
        cont(k2, a2),
    )


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _pairs(static, num, chunk, key, params, env_params, gamma):
    keys = jax.random.split(key, num)
    fn = lambda k: _one_pair(k, params, env_params, gamma, static)  # noqa: E731
    return jax.lax.map(fn, keys, batch_size=chunk)


def sample_pairs(
    key: Array,
    env: envs.Environment,
    env_params: Any,
    policy_apply: Callable,
    policy_params: Any,
    num_states: int,
    *,
    gamma: float = 1.0,
    max_steps: int | None = None,
    chunk_size: int = 256,
) -> Pairs:
    """Draw K visited pairs (one per fresh episode) and their three continuations.

    Trajectory i uses ``jax.random.split(key, K)[i]``; its continuations restart
    from the saved env state (time step included), so the time limit still
    applies to them.

    Args:
      key: PRNG key.
      env, env_params: a gymnax environment with discrete actions.
      policy_apply: ``(params, obs) -> logits``.
      policy_params: frozen policy parameters.
      num_states: K, visited pairs (= episodes) to draw.
      gamma: discount of the continuation returns (1: the T1 target).
      max_steps: scan length of an episode and of a continuation (default: the
        env's ``max_steps_in_episode``).
      chunk_size: pairs simulated at once (bounds memory, not results).

    Returns:
      :class:`Pairs` with leaves ``[K, ...]``.
    """
    spec = envs.env_spec(env, env_params)
    if not spec.discrete:
        raise ValueError("the decomposition needs a discrete action space")
    horizon = spec.max_episode_steps if max_steps is None else int(max_steps)
    if horizon < 1:
        raise ValueError("max_steps is needed: this environment has no episode limit")
    static = (policy_apply, env, spec, horizon)
    return _pairs(
        static,
        num_states,
        min(chunk_size, num_states),
        key,
        policy_params,
        env_params,
        jnp.asarray(gamma, jnp.float32),
    )


# --- estimates -------------------------------------------------------------------


def _weighted(w: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum(w * x) / np.sum(w))


def _estimate(pairs: dict, baselines: dict[str, np.ndarray], signal_baseline: str) -> dict:
    """Point estimates on one set of pairs (NumPy float64 arrays)."""
    w = pairs["length"]
    n1 = np.sum(pairs["psi1"] ** 2, axis=1)
    dot = np.sum(pairs["psi1"] * pairs["psi2"], axis=1)
    qx, qy, q2 = pairs["q1x"], pairs["q1y"], pairs["q2"]
    b_sig = baselines[signal_baseline]
    h = pairs["psi1"] * ((qx + qy) / 2 - b_sig)[:, None]
    wn = w / w.sum()
    m = wn @ h
    var_m = float(np.sum(wn**2 * np.sum((h - m) ** 2, axis=1)))
    signal = float(m @ m) - var_m
    mu_sq = _weighted(w, dot * qx * q2)
    out = {
        "signal_sq": signal,
        "state": mu_sq - signal,
        "trajectory": _weighted(w, n1 * (qx - qy) ** 2 / 2),
    }
    for name, b in baselines.items():
        out[f"action/{name}"] = _weighted(w, n1 * (qx - b) * (qy - b)) - mu_sq
        out[f"total/{name}"] = out["state"] + out[f"action/{name}"] + out["trajectory"]
        out[f"total_direct/{name}"] = (
            _weighted(w, n1 * ((qx - b) ** 2 + (qy - b) ** 2) / 2) - signal
        )
    return out


def components(
    pairs: Pairs,
    baselines: dict[str, Array],
    *,
    signal_baseline: str | None = None,
    groups: int = 16,
) -> dict:
    """Σ_s, Σ_a(b) for each baseline, Σ_τ and the total, with standard errors.

    Args:
      pairs: from :func:`sample_pairs`.
      baselines: ``{name: b[K]}``, b(s_i, t_i) at each pair (zeros for none).
      signal_baseline: the baseline whose weights estimate ‖E ĝ₁‖² (default:
        the last one; any gives the same expectation, a better one less noise).
      groups: disjoint groups of pairs for the standard errors (batch means).

    Returns:
      dict with, per key (``state``, ``trajectory``, ``action/<b>``,
      ``total/<b>``, ``total_direct/<b>``, ``removed/<b>`` = Σ_a(first) −
      Σ_a(b), ``signal_sq``), ``{"value", "se"}``; plus ``num_states`` and
      ``mean_length``. Units: squared gradient per state-action sample.
    """
    if not baselines:
        raise ValueError("baselines must name at least one baseline, e.g. {'none': zeros}")
    names = list(baselines)
    sig = names[-1] if signal_baseline is None else signal_baseline
    if sig not in baselines:
        raise ValueError(f"signal_baseline={sig!r} is not one of {', '.join(names)}")
    arr = {k: np.asarray(getattr(pairs, k), np.float64) for k in ("length", "q1x", "q1y", "q2")}
    arr["psi1"] = np.asarray(pairs.psi1, np.float64)
    arr["psi2"] = np.asarray(pairs.psi2, np.float64)
    bs = {k: np.asarray(v, np.float64) for k, v in baselines.items()}
    k = arr["length"].shape[0]
    groups = max(2, min(groups, k // 2))
    full = _estimate(arr, bs, sig)
    for b in names:
        full[f"removed/{b}"] = full[f"action/{names[0]}"] - full[f"action/{b}"]
    parts = []
    for idx in np.array_split(np.arange(k), groups):
        est = _estimate(
            {a: v[idx] for a, v in arr.items()}, {a: v[idx] for a, v in bs.items()}, sig
        )
        for b in names:
            est[f"removed/{b}"] = est[f"action/{names[0]}"] - est[f"action/{b}"]
        parts.append(est)
    out = {}
    for key, value in full.items():
        vals = np.array([p[key] for p in parts])
        out[key] = {"value": value, "se": float(vals.std(ddof=1) / np.sqrt(groups))}
    out["num_states"] = k
    out["mean_length"] = float(arr["length"].mean())
    return out


# --- exact values on a tabular MDP -------------------------------------------------


def exact_components(
    mdp: tabular.TabularMDP,
    theta: Array,
    baseline: Array | None = None,
    gamma: float = 1.0,
) -> dict[str, Array]:
    """Exact Σ_s, Σ_a(b), Σ_τ and total of ĝ₁ on a tabular MDP (backward induction).

    "State" is the pair (s, t). With ρ_t(s) = P(s_t = s, alive), E[T] = Σ ρ,
    Q_t(s, a) = R + γ Σ_{s'} P (1 − term) V_{t+1}, the second moment
    M_t(s, a) = R² + 2γR Σ P(1 − term)V_{t+1} + γ² Σ P(1 − term)W_{t+1} with
    W_t(s) = Σ_a π M_t(s, a), and the tabular-softmax score ψ(s, a) = e_a − π(·|s)
    on row s, each component is the d-weighted sum of its integrand.

    Args:
      mdp: the MDP.
      theta: ``[S, A]`` softmax logits.
      baseline: ``[H, S]`` b_t(s) (None: no baseline).
      gamma: discount of the return-to-go.

    Returns:
      ``{"state", "action", "trajectory", "total", "mean"}``; ``mean`` is
      E ĝ₁ ``[S·A]`` (= ∇J / E[T] for γ = 1).
    """
    dt = theta.dtype
    P = jnp.asarray(mdp.P, dt)
    R = jnp.asarray(mdp.R, dt)
    alive = 1.0 - jnp.asarray(mdp.terminal, dt)
    pi = jax.nn.softmax(theta, axis=-1)
    H, S, A = mdp.horizon, mdp.num_states, mdp.num_actions
    b = jnp.zeros((H, S), dt) if baseline is None else jnp.asarray(baseline, dt)

    def back(carry, _):
        v_next, w_next = carry
        ev = jnp.einsum("sat,t->sa", P, alive * v_next)
        ew = jnp.einsum("sat,t->sa", P, alive * w_next)
        q = R + gamma * ev
        m = R**2 + 2 * gamma * R * ev + gamma**2 * ew
        return (jnp.sum(pi * q, -1), jnp.sum(pi * m, -1)), (q, m)

    zero = jnp.zeros(S, dt)
    _, (q, m) = jax.lax.scan(back, (zero, zero), None, length=H)
    q, m = q[::-1], m[::-1]  # [H, S, A]

    def forward(rho, _):
        nxt = jnp.einsum("s,sa,sat->t", rho, pi, P) * alive
        return nxt, rho

    rho0 = jnp.asarray(mdp.p0, dt) * alive
    _, rho = jax.lax.scan(forward, rho0, None, length=H)  # [H, S]
    d = rho / jnp.sum(rho)
    eye = jnp.eye(A, dtype=dt)
    psi = eye[None, :, :] - pi[:, None, :]  # [S, a, A'] score on row s
    psi_sq = jnp.sum(psi**2, -1)  # [S, A]
    mu = jnp.einsum("sa,sab,tsa->tsb", pi, psi, q)  # [H, S, A'] μ on row s
    mu_sq = jnp.sum(mu**2, -1)
    var_tau = m - q**2
    trajectory = jnp.sum(d * jnp.sum(pi * psi_sq * var_tau, -1))
    adv_sq = jnp.sum(pi * psi_sq * (q - b[:, :, None]) ** 2, -1)
    action = jnp.sum(d * (adv_sq - mu_sq))
    mean = jnp.einsum("ts,tsb->sb", d, mu).reshape(-1)
    state = jnp.sum(d * mu_sq) - jnp.sum(mean**2)
    return {
        "state": state,
        "action": action,
        "trajectory": trajectory,
        "total": state + action + trajectory,
        "mean": mean,
    }
