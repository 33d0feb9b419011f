"""The one compiled update: rollout → weights → Optax gradient-ascent step(s).

``make_update(config)`` returns ``update(state, hparams) -> (state, metrics)``.
``config`` is static (shapes, env, estimator); ``hparams`` (:class:`HParams`) is
traced, so calling the jitted update again with other values never recompiles.

One update:

1. Roll out the current policy: a fixed segment continued from ``state.env``
   (``segments``) or one fresh episode per env (``episodes``).
2. One batched critic pass gives V(s_t) and V(s'_t) (s'_t the true next
   observation), so truncations bootstrap from the final observation.
3. Estimator weights Ψ_t from the pre-update critic (``jaxpg.estimators``).
4. Gradient ascent on the surrogate (Optax minimises −surrogate): one
   full-batch step for reinforce/reward_to_go/baseline/vpg, and
   ``num_epochs × num_minibatches`` clipped steps for PPO. Gradients are clipped
   by global norm; the learning rate is injected into the Optax state each step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, PartitionSpec

from jaxpg import envs, estimators, networks, rollout, sharding, shuffle
from jaxpg.config import Config, HParams


class Agent(NamedTuple):
    """The static parts of a run: networks, env and derived sizes."""

    config: Config
    env: Any
    env_params: Any
    spec: envs.EnvSpec
    policy: networks.Policy
    value: networks.Value
    optimizer: optax.GradientTransformation
    horizon: int  # T of one rollout
    num_updates: int
    # With a mesh (``jaxpg.sharding.env_mesh``), PPO's minibatches are split over
    # its ``"envs"`` axis, so every device takes a share of each gradient step and
    # XLA sums the gradients (data parallel). None: one device, nothing pinned.
    mesh: Any = None

    def policy_apply(self, params, obs):
        return self.policy.apply(params, obs)

    def value_apply(self, params, obs):
        return self.value.apply(params, obs)


class TrainState(flax.struct.PyTreeNode):
    """Everything that evolves during training."""

    params: dict  # {"policy": ..., "value": ...}
    opt_state: Any
    env: rollout.EnvCarry
    key: jax.Array
    update_step: jax.Array  # int32, updates done so far
    env_steps: jax.Array  # float32, env steps taken so far (masked steps excluded)
    last_return: jax.Array  # float32, mean return of the last finished episodes (NaN if none)


def make_agent(config: Config, env=None, env_params=None) -> Agent:
    """Build the networks, env and optimizer for ``config`` (no tracing happens)."""
    env_obj, env_params = envs.make_env(config.env if env is None else env, env_params)
    spec = envs.env_spec(env_obj, env_params)
    if config.rollout_mode == "episodes":
        horizon = spec.max_episode_steps
        if horizon < 1:
            raise ValueError(
                "rollout='episodes' needs env_params.max_steps_in_episode >= 1 to bound "
                "an episode; this environment has none"
            )
    else:
        horizon = config.num_steps
    num_updates = config.total_timesteps // (config.num_envs * horizon)
    if num_updates < 1:
        raise ValueError(
            f"Config.total_timesteps={config.total_timesteps} is too small: one update "
            f"takes num_envs*T = {config.num_envs}*{horizon} = {config.num_envs * horizon} steps"
        )
    policy = networks.Policy(
        config.hidden_sizes,
        config.activation,
        spec.action_dim,
        spec.discrete,
        config.log_std_init,
        config.weight_init,
    )
    value = networks.Value(config.hidden_sizes, config.activation, config.weight_init)
    optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=config.lr, eps=1e-5)
    return Agent(config, env_obj, env_params, spec, policy, value, optimizer, horizon, num_updates)


def init_state(agent: Agent, key: jax.Array) -> TrainState:
    """Initialise parameters, optimizer state and environments from ``key``."""
    k_pol, k_val, k_env, k_state = jax.random.split(key, 4)
    dummy = jnp.zeros((1, agent.spec.obs_size), jnp.float32)
    params = {
        "policy": agent.policy.init(k_pol, dummy),
        "value": agent.value.init(k_val, dummy),
    }
    return TrainState(
        params=params,
        opt_state=agent.optimizer.init(params),
        env=rollout.reset_envs(k_env, agent.env, agent.env_params, agent.config.num_envs),
        key=k_state,
        update_step=jnp.zeros((), jnp.int32),
        env_steps=jnp.zeros((), jnp.float32),
        last_return=jnp.full((), jnp.nan, jnp.float32),
    )


class Batch(NamedTuple):
    """What the loss needs, flattened to ``[N]`` (segments/PPO) or ``[T, B]``."""

    obs: jax.Array
    action: jax.Array
    old_log_prob: jax.Array
    psi: jax.Array
    value_target: jax.Array
    mask: jax.Array


def loss_fn(agent: Agent, params: dict, batch: Batch, hp: HParams, normalizer):
    """−(policy surrogate + ent_coef·entropy) + vf_coef·value loss, and metrics."""
    config = agent.config
    dist = agent.policy_apply(params["policy"], batch.obs)
    logp = networks.log_prob(dist, batch.action)
    ent = estimators.masked_mean(networks.entropy(dist), batch.mask)
    if config.estimator == "ppo":
        obj, kl, frac = estimators.ppo_surrogate(
            logp, batch.old_log_prob, batch.psi, batch.mask, hp.clip_eps
        )
    else:
        obj = estimators.pg_surrogate(logp, batch.psi, batch.mask, normalizer)
        kl = frac = jnp.zeros(())
    loss = -(obj + hp.ent_coef * ent)
    v_loss = jnp.zeros(())
    if config.uses_critic:
        v = agent.value_apply(params["value"], batch.obs)
        v_loss = estimators.value_loss(v, batch.value_target, batch.mask)
        loss = loss + hp.vf_coef * v_loss
    aux = {
        "policy_loss": -obj,
        "value_loss": v_loss,
        "entropy": ent,
        "approx_kl": kl,
        "clip_frac": frac,
    }
    return loss, aux


def apply_gradients(agent: Agent, params, opt_state, grads, lr, max_grad_norm):
    """Clip by global norm, then one Optax step with the injected learning rate."""
    g_norm = optax.global_norm(grads)
    scale = jnp.minimum(1.0, max_grad_norm / jnp.maximum(g_norm, 1e-12))
    grads = jax.tree.map(lambda g: g * scale, grads)
    hyper = dict(opt_state.hyperparams)
    hyper["learning_rate"] = jnp.asarray(lr, jnp.float32)
    opt_state = opt_state._replace(hyperparams=hyper)
    updates, opt_state = agent.optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, g_norm


def _sgd_step(agent, hp, lr, normalizer, carry, batch: Batch, chunk: int | None = None):
    params, opt_state = carry
    (loss, aux), grads = _chunked_grad(agent, params, batch, hp, normalizer, chunk)
    params, opt_state, g_norm = apply_gradients(
        agent, params, opt_state, grads, lr, hp.max_grad_norm
    )
    return (params, opt_state), {**aux, "loss": loss, "grad_norm": g_norm}


def _minibatches(agent, flat: Batch, key) -> Batch:
    """Shuffle ``[N, ...]`` leaves with one permutation; split into ``[M, N/M, ...]``."""
    n = flat.mask.shape[0]
    m = agent.config.num_minibatches
    if agent.config.minibatch_shuffle == "sort":
        perm = jax.random.permutation(key, n)
    else:
        perm = shuffle.permutation(key, n)
    shuffled = jax.tree.map(lambda x: x[perm].reshape((m, n // m) + x.shape[1:]), flat)
    mesh = agent.mesh
    if mesh is not None and mesh.size > 1 and (n // m) % mesh.size == 0:
        rows = NamedSharding(mesh, PartitionSpec(None, sharding.ENV_AXIS))
        shuffled = jax.lax.with_sharding_constraint(
            shuffled, jax.tree.map(lambda _: rows, shuffled)
        )
    return shuffled


# Cache-sized chunks on CPU: arrays of more than _CHUNK_ABOVE samples are
# processed in chunks of at most _CPU_CHUNK (measured on 2 cores: a PPO minibatch
# gradient of 131,072 samples runs 1.5x faster in chunks of 8192, the critic's
# forward pass over a 512-env rollout 2x; no gain at 16,384, which fits in cache).
_CPU_CHUNK = 8192
_CHUNK_ABOVE = 16384


def _auto_chunks(agent: Agent, n: int) -> bool:
    return (
        agent.config.rollout_mode == "segments"
        and agent.mesh is None
        and jax.default_backend() == "cpu"
        and n > _CHUNK_ABOVE
    )


def grad_chunk_size(agent: Agent, minibatch: int) -> int:
    """Samples per gradient chunk of a PPO minibatch (``minibatch``: no chunking)."""
    if agent.config.grad_chunk is not None:
        return agent.config.grad_chunk
    if not _auto_chunks(agent, minibatch):
        return minibatch
    # The largest divisor up to _CPU_CHUNK; none down to _CPU_CHUNK / 8: no chunks.
    fits = (d for d in range(_CPU_CHUNK, _CPU_CHUNK // 8 - 1, -1) if minibatch % d == 0)
    return next(fits, minibatch)


def chunked_apply(agent: Agent, fn, x: jax.Array) -> jax.Array:
    """``fn(x)`` for a per-sample ``fn`` over ``x[N, ...]``, in cache-sized chunks on CPU.

    ``x`` is padded to a whole number of chunks and the padding dropped, so any
    ``N`` works; without auto chunking (GPU/TPU, sharded runs, small ``N``) it is
    just ``fn(x)``.
    """
    n = x.shape[0]
    if not _auto_chunks(agent, n):
        return fn(x)
    k = -(-n // _CPU_CHUNK)
    padded = jnp.concatenate([x, jnp.zeros((k * _CPU_CHUNK - n,) + x.shape[1:], x.dtype)])
    out = jax.lax.map(fn, padded.reshape((k, _CPU_CHUNK) + x.shape[1:]))
    return jax.tree.map(lambda y: y.reshape((k * _CPU_CHUNK,) + y.shape[2:])[:n], out)


def _chunked_grad(agent, params, batch: Batch, hp: HParams, normalizer, chunk: int | None):
    """(loss, aux) and gradient of :func:`loss_fn`; with ``chunk``, the mean over chunks.

    Chunks are for PPO minibatches only (``normalizer`` 1): every term of that
    loss is a mean over unmasked samples, so the mean of equal chunks' values and
    gradients is the minibatch's, up to float rounding.
    """
    grad_fn = jax.value_and_grad(loss_fn, argnums=1, has_aux=True)
    n = batch.mask.shape[0]
    if chunk is None or chunk >= n:
        return grad_fn(agent, params, batch, hp, normalizer)
    k = n // chunk
    chunks = jax.tree.map(lambda x: x.reshape((k, chunk) + x.shape[1:]), batch)

    def body(acc, b):
        out = grad_fn(agent, params, b, hp, 1.0)
        return jax.tree.map(jnp.add, acc, out), None

    first = jax.tree.map(lambda x: x[0], chunks)
    shapes = jax.eval_shape(lambda p, b: grad_fn(agent, p, b, hp, 1.0), params, first)
    zero = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
    total, _ = jax.lax.scan(body, zero, chunks)
    return jax.tree.map(lambda x: x / k, total)


def _ppo_epoch(agent, hp, lr, flat: Batch, carry, key):
    """One pass over the shuffled batch in ``num_minibatches`` minibatches."""
    chunk = grad_chunk_size(agent, flat.mask.shape[0] // agent.config.num_minibatches)
    step = lambda c, b: _sgd_step(agent, hp, lr, 1.0, c, b, chunk)  # noqa: E731
    return jax.lax.scan(step, carry, _minibatches(agent, flat, key))


def collect(agent: Agent, state: TrainState, key: jax.Array):
    """Roll out the current policy; returns (new env carry, transition [T, B])."""
    cfg = agent.config
    policy_params = state.params["policy"]
    if cfg.rollout_mode == "episodes":
        trans = rollout.rollout_episodes(
            key,
            agent.policy_apply,
            policy_params,
            agent.env,
            agent.env_params,
            agent.spec,
            cfg.num_envs,
            agent.horizon,
        )
        return state.env, trans
    return rollout.rollout_segment(
        key,
        agent.policy_apply,
        policy_params,
        agent.env,
        agent.env_params,
        agent.spec,
        state.env,
        agent.horizon,
    )


def critic_values(agent: Agent, params, trans: rollout.Transition):
    """V(s_t) and V(s'_t) in one batched pass: two ``[T, B]`` arrays."""
    if not agent.config.uses_critic:
        zeros = jnp.zeros_like(trans.reward)
        return zeros, zeros
    both = jnp.stack([trans.obs, trans.final_obs])
    flat = both.reshape((-1,) + both.shape[3:])
    v = chunked_apply(agent, lambda o: agent.value_apply(params["value"], o), flat)
    v = v.reshape(both.shape[:3])
    return v[0], v[1]


def episode_metrics(trans: rollout.Transition, last_return):
    """Mean return/length of the episodes that finished in this rollout."""
    ended = trans.done.astype(jnp.float32) * trans.mask
    count = jnp.sum(ended)
    mean_ret = jnp.sum(trans.ep_return * ended) / jnp.maximum(count, 1.0)
    mean_len = jnp.sum(trans.ep_length * ended) / jnp.maximum(count, 1.0)
    mean_ret = jnp.where(count > 0, mean_ret, last_return)
    return {"episode_return": mean_ret, "episode_length": mean_len, "episodes": count}


def update(agent: Agent, state: TrainState, hp: HParams):
    """One training update. Pure; see the module docstring for the steps."""
    cfg = agent.config
    key, k_roll, k_epochs = jax.random.split(state.key, 3)
    env_carry, trans = collect(agent, state, k_roll)

    values, next_values = critic_values(agent, state.params, trans)
    w = estimators.weights(
        cfg.estimator,
        trans.reward,
        values,
        next_values,
        trans.terminated,
        trans.truncated,
        gamma=hp.gamma,
        lam=hp.lam,
    )
    psi = estimators.normalize(w.psi, trans.mask) if cfg.normalize else w.psi
    target = w.value_target if w.value_target is not None else jnp.zeros_like(psi)

    frac = 1.0 - state.update_step.astype(jnp.float32) / agent.num_updates
    lr = hp.lr * frac if cfg.anneal_lr else hp.lr
    batch = Batch(trans.obs, trans.action, trans.log_prob, psi, target, trans.mask)
    carry = (state.params, state.opt_state)

    if cfg.estimator == "ppo":
        flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), batch)
        epoch = lambda c, k: _ppo_epoch(agent, hp, lr, flat, c, k)  # noqa: E731
        carry, aux = jax.lax.scan(epoch, carry, jax.random.split(k_epochs, cfg.num_epochs))
        aux = jax.tree.map(jnp.mean, aux)
    else:
        # One full-batch step: per trajectory for complete episodes, per step otherwise.
        normalizer = float(cfg.num_envs) if cfg.rollout_mode == "episodes" else jnp.sum(trans.mask)
        carry, aux = _sgd_step(agent, hp, lr, normalizer, carry, batch)
    params, opt_state = carry

    ep = episode_metrics(trans, state.last_return)
    steps = state.env_steps + jnp.sum(trans.mask)
    metrics = {**aux, **ep, "env_steps": steps, "lr": jnp.asarray(lr, jnp.float32)}
    new_state = TrainState(
        params=params,
        opt_state=opt_state,
        env=env_carry,
        key=key,
        update_step=state.update_step + 1,
        env_steps=steps,
        last_return=ep["episode_return"],
    )
    return new_state, metrics


def make_update(config: Config, env=None, env_params=None):
    """Return the jitted ``update(state, hparams) -> (state, metrics)`` for ``config``.

    Args:
      config: static configuration (validated already).
      env: optional gymnax ``Environment`` instance overriding ``config.env``.
      env_params: optional params for ``env``.

    Returns:
      A jitted function. ``hparams`` is an :class:`HParams` (``config.hparams()``
      gives the config's values); new values do not recompile. Use
      :func:`make_init` for the matching initial state.

    Example:
      >>> import jax, jaxpg
      >>> cfg = jaxpg.Config(num_envs=2, num_steps=8, num_minibatches=2)
      >>> state = jaxpg.make_init(cfg)(jax.random.key(0))
      >>> state, metrics = jaxpg.make_update(cfg)(state, cfg.hparams())
      >>> int(state.update_step)
      1
    """
    agent = make_agent(config, env, env_params)
    return jax.jit(lambda state, hp: update(agent, state, hp))


def make_init(config: Config, env=None, env_params=None):
    """Return ``init(key) -> TrainState`` for ``config``."""
    agent = make_agent(config, env, env_params)
    return lambda key: init_state(agent, key)
