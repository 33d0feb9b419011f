"""A time-aware critic V*(s, t) fit on a fresh pool, for the E3-Vstar baseline.

The time-limited return G_t = Σ_{k≥t} r_k of CartPole depends on the time left,
so V* takes x = [s, (T − t)/T] (``docs/variance.md``, pitfall 8 iii). It is fit by minibatch Adam
regression of G_t/T on a pool disjoint from the test and reference pools
(pitfall 17), so as a baseline it is independent of the trajectories it is
applied to and keeps the estimator unbiased.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxpg import networks, rollout

Array = jax.Array


def time_features(obs: Array, horizon: int) -> Array:
    """[s, (T − t)/T] for a time-major ``[T, K, obs]`` array → ``[T, K, obs + 1]``."""
    t = jnp.arange(obs.shape[0], dtype=obs.dtype)[:, None, None]
    left = jnp.broadcast_to((horizon - t) / horizon, obs.shape[:2] + (1,))
    return jnp.concatenate([obs, left], axis=-1)


def _loss(net, params, x, y):
    return jnp.mean((net.apply(params, x) - y) ** 2)


def fit(
    key: Array,
    pool: rollout.Transition,
    returns_to_go: Array,
    horizon: int,
    *,
    hidden_sizes=(64, 64),
    steps: int = 1500,
    batch_size: int = 2048,
    lr: float = 3e-3,
) -> tuple[Any, Any]:
    """Fit V*(s, t) ≈ E[G_t | s, t] on the valid steps of ``pool``.

    Args:
      key: PRNG key (init and minibatches).
      pool: ``[T, K]`` complete episodes (fresh: not the measured pool).
      returns_to_go: ``[T, K]`` targets G_t.
      horizon: the episode limit T_max used to scale time and targets.
      hidden_sizes, steps, batch_size, lr: MLP width and Adam schedule.

    Returns:
      ``(apply, params)`` where ``apply(params, obs[T, K, o]) -> [T, K]`` values
      (time from the array's index), or ``apply(params, obs[..., o], t[...])`` at
      explicit time steps t.
    """
    net = networks.Value(tuple(hidden_sizes), "tanh")
    x = time_features(pool.obs, horizon).reshape(-1, pool.obs.shape[-1] + 1)
    y = (returns_to_go / horizon).reshape(-1)
    p = pool.mask.reshape(-1) / jnp.sum(pool.mask)
    k_init, k_idx = jax.random.split(key)
    params = net.init(k_init, x[:1])
    opt = optax.adam(optax.cosine_decay_schedule(lr, steps))
    idx = jax.random.choice(k_idx, x.shape[0], (steps, batch_size), p=p)
    params = _train(net, opt, params, x, y, idx)

    def apply(prm, obs, t=None):
        if t is None:  # a time-major [T, K, o] pool: t is the time index
            return net.apply(prm, time_features(obs, horizon)) * horizon
        left = (horizon - jnp.asarray(t, obs.dtype)[..., None]) / horizon
        return net.apply(prm, jnp.concatenate([obs, left], axis=-1)) * horizon

    return apply, params


def _train(net, opt, params, x, y, idx):
    @jax.jit
    def run(params, x, y, idx):
        def step(carry, i):
            prm, st = carry
            g = jax.grad(_loss, argnums=1)(net, prm, x[i], y[i])
            upd, st = opt.update(g, st, prm)
            return (optax.apply_updates(prm, upd), st), None

        (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), idx)
        return params

    return run(params, x, y, idx)
