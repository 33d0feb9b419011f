"""Slow NumPy oracles: plain ``for t in reversed(range(T))`` loops, written from the
definitions in SPEC.md and independent of the JAX implementations."""

from __future__ import annotations

import numpy as np


def gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    r, v, nv = (np.asarray(x, np.float64) for x in (rewards, values, next_values))
    term = np.asarray(terminated, bool)
    done = term | np.asarray(truncated, bool)
    adv = np.zeros_like(r)
    nxt = np.zeros_like(r[0])
    for t in reversed(range(r.shape[0])):
        delta = r[t] + gamma * np.where(term[t], 0.0, nv[t]) - v[t]
        nxt = delta + gamma * lam * np.where(done[t], 0.0, nxt)
        adv[t] = nxt
    return adv


def reward_to_go(rewards, next_values, terminated, truncated, gamma):
    r, nv = np.asarray(rewards, np.float64), np.asarray(next_values, np.float64)
    term, trunc = np.asarray(terminated, bool), np.asarray(truncated, bool)
    T = r.shape[0]
    g = np.zeros_like(r)
    nxt = np.zeros_like(r[0])
    for t in reversed(range(T)):
        if t == T - 1:
            cont = np.where(term[t], 0.0, nv[t])
        else:
            cont = np.where(term[t], 0.0, np.where(trunc[t], nv[t], nxt))
        nxt = r[t] + gamma * cont
        g[t] = nxt
    return g


def episode_returns(rewards, terminated, truncated, gamma):
    """Loop over each batch column, split it into episodes, sum γ^k r_k."""
    r = np.asarray(rewards, np.float64)
    done = np.asarray(terminated, bool) | np.asarray(truncated, bool)
    T = r.shape[0]
    flat_r = r.reshape(T, -1)
    flat_d = done.reshape(T, -1)
    out = np.zeros_like(flat_r)
    for b in range(flat_r.shape[1]):
        start = 0
        for t in range(T):
            if flat_d[t, b] or t == T - 1:
                ret = sum(gamma ** (k - start) * flat_r[k, b] for k in range(start, t + 1))
                out[start : t + 1, b] = ret
                start = t + 1
    return out.reshape(r.shape)
