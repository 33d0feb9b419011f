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
   full-batch step for estimators whose ``update`` is ``"step"``, and
   ``num_epochs × num_minibatches`` clipped steps for ``"epochs"`` (PPO). The
   optimizer is the run's Optax chain built from ``hparams`` (global-norm
   clipping and the learning-rate schedule included; :mod:`jaxpg.optimizers`).
   ``"trust_region"`` (``npg``/``trpo``): one natural-gradient step of the policy
   (:mod:`jaxpg.natural`, δ = ``hparams.delta``), then the critic is fit with
   ``num_epochs × num_minibatches`` Optax steps on the same batch, after the
   advantages were computed (:func:`_trust_region_step`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, PartitionSpec

from jaxpg import (
    blocking,
    compiling,
    estimators,
    groups,
    natural,
    networks,
    normalization,
    rollout,
    sharding,
    shuffle,
)
from jaxpg.config import Config, HParams
from jaxpg.runspec import RunSpec, TrainState, init_state, initial_hidden, make_runspec


class Batch(NamedTuple):
    """What the loss needs, flattened to ``[N, ...]`` (PPO minibatches) or ``[T, B, ...]``."""

    obs: jax.Array
    action: jax.Array
    old_log_prob: jax.Array
    psi: jax.Array
    value_target: jax.Array
    mask: jax.Array
    # Recurrent networks only ([T, B] layout): the state before step 0 [B, ...], and
    # which steps ended an episode [T, B] (the state is zeroed after them).
    hidden0: Any = None
    done: Any = None


def model_for(run: RunSpec, batch: Batch) -> networks.Model:
    """The networks as the losses call them: ``run.model`` itself, or for a recurrent
    model its replay over ``batch``'s sequences (:func:`jaxpg.networks.sequence_view`).

    Args:
      run: the run's set-up.
      batch: the batch the loss is taken on (``hidden0``/``done`` are read only
        for a recurrent model, which needs the ``[T, B, ...]`` layout).

    Returns:
      A :class:`~jaxpg.networks.Model` to call on ``batch.obs``.
    """
    if run.recurrent:
        return networks.sequence_view(run.model, batch.hidden0, batch.done)
    return run.model


def loss_fn(run: RunSpec, params: Any, batch: Batch, hp: HParams, normalizer):
    """−(policy surrogate + ent_coef·entropy) + vf_coef·value loss, and metrics.

    The policy surrogate is PPO's clipped objective for ``update="epochs"``,
    otherwise :func:`jaxpg.estimators.pg_surrogate`; the value loss enters only
    for estimators with a critic.

    Args:
      run: the run's set-up (estimator, networks).
      params: the model's parameters (differentiated).
      batch: a :class:`Batch`, ``[N, ...]`` (a minibatch) or ``[T, B, ...]``.
      hp: traced hyperparameters (``clip_eps``, ``ent_coef``, ``vf_coef``).
      normalizer: the surrogate's divisor for ``pg_surrogate`` (episodes: B;
        segments: the unmasked steps); unused by PPO.

    Returns:
      ``(loss, aux)``: the float32 scalar loss and a dict of float32 scalar
      diagnostics (``policy_loss``, ``value_loss``, ``entropy``, ``approx_kl``,
      ``clip_frac``; the last two 0 outside PPO).
    """
    critic = run.estimator.critic
    model = model_for(run, batch)
    if critic:
        dist, v = model.policy_value(params, batch.obs)
    else:
        dist = model.policy(params, batch.obs)
    logp = networks.log_prob(dist, batch.action)
    ent = estimators.masked_mean(networks.entropy(dist), batch.mask)
    if run.estimator.update == "epochs":
        obj, kl, frac = estimators.ppo_surrogate(
            logp, batch.old_log_prob, batch.psi, batch.mask, hp.clip_eps
        )
    else:
        obj = estimators.pg_surrogate(logp, batch.psi, batch.mask, normalizer)
        kl = frac = jnp.zeros(())
    loss = -(obj + hp.ent_coef * ent)
    v_loss = jnp.zeros(())
    if critic:
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


def _sgd_step(run: RunSpec, hp: HParams, normalizer, carry, batch: Batch, chunk=None):
    """One optimizer step on ``batch`` (with ``chunk``, its gradient over chunks of
    that many samples; :func:`jaxpg.blocking.chunked_value_and_grad`)."""
    params, opt_state = carry
    grad_fn = jax.value_and_grad(lambda p, b: loss_fn(run, p, b, hp, normalizer), has_aux=True)
    (loss, aux), grads = blocking.chunked_value_and_grad(grad_fn, params, batch, chunk)
    updates, opt_state = run.optimizer.build(hp).update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return (params, opt_state), {**aux, "loss": loss, "grad_norm": optax.global_norm(grads)}


def _minibatches(run: RunSpec, flat: Batch, key: jax.Array) -> Batch:
    """Shuffle ``[N, ...]`` leaves with one permutation; split into ``[M, N/M, ...]``."""
    n = flat.mask.shape[0]
    m = run.config.num_minibatches
    if run.config.minibatch_shuffle == "sort":
        perm = jax.random.permutation(key, n)
    else:
        perm = shuffle.permutation(key, n)
    shuffled = jax.tree.map(lambda x: x[perm].reshape((m, n // m) + x.shape[1:]), flat)
    mesh = run.mesh
    if mesh is not None and mesh.size > 1 and (n // m) % mesh.size == 0:
        rows = NamedSharding(mesh, PartitionSpec(None, sharding.ENV_AXIS))
        shuffled = jax.lax.with_sharding_constraint(
            shuffled, jax.tree.map(lambda _: rows, shuffled)
        )
    return shuffled


def _sequence_minibatches(run: RunSpec, batch: Batch, key: jax.Array) -> Batch:
    """A recurrent run's minibatches: whole env sequences, ``[M, T, B/M, ...]``
    (``hidden0`` ``[M, B/M, ...]``), the envs shuffled by one permutation."""
    b = batch.mask.shape[1]
    m = run.config.num_minibatches
    perm = jax.random.permutation(key, b)

    def split(x, axis):
        x = jnp.take(x, perm, axis=axis)
        x = x.reshape(x.shape[:axis] + (m, b // m) + x.shape[axis + 1 :])
        return jnp.moveaxis(x, axis, 0)

    hidden0 = jax.tree.map(lambda x: split(x, 0), batch.hidden0)
    rest = batch._replace(hidden0=None)
    return jax.tree.map(lambda x: split(x, 1), rest)._replace(hidden0=hidden0)


def _split(run: RunSpec, batch: Batch, key: jax.Array) -> Batch:
    """``num_minibatches`` shuffled minibatches of ``batch`` ``[T, B, ...]``: samples
    (feed-forward), or whole sequences (recurrent)."""
    if run.recurrent:
        return _sequence_minibatches(run, batch, key)
    flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), batch)
    return _minibatches(run, flat, key)


def _epoch(run: RunSpec, hp: HParams, batch: Batch, carry, key: jax.Array):
    """One pass over the shuffled batch ``[T, B, ...]`` in ``num_minibatches`` minibatches."""
    n = batch.mask.size // run.config.num_minibatches
    chunk = None if run.recurrent else blocking.grad_chunk_size(run, n)
    step = lambda c, b: _sgd_step(run, hp, 1.0, c, b, chunk)  # noqa: E731
    return jax.lax.scan(step, carry, _split(run, batch, key))


def collect(run: RunSpec, state: TrainState, key: jax.Array):
    """Roll out the current policy from ``state``.

    Args:
      run: the run's set-up.
      state: supplies the params and (segments) the env carry to continue.
      key: PRNG key of this rollout.

    Returns:
      ``(env carry [B, ...], Transition [T, B, ...])``; in ``episodes`` mode the
      carry is ``state.env`` unchanged (each episode starts from a fresh reset).
    """
    cfg = run.config
    policy = run.model.step if run.recurrent else run.model.policy
    hidden = initial_hidden(run)  # fresh episodes start from the zero state
    if run.estimator.grouped:
        trans = groups.rollout_groups(
            key, policy, state.params, run.env, run.env_params, run.spec,
            cfg.num_envs, run.horizon, cfg.group_size, hidden,
        )  # fmt: skip
        return state.env, trans
    if cfg.rollout_mode == "episodes":
        trans = rollout.rollout_episodes(
            key, policy, state.params, run.env, run.env_params, run.spec,
            cfg.num_envs, run.horizon, hidden=hidden,
        )  # fmt: skip
        return state.env, trans
    return rollout.rollout_segment(
        key, policy, state.params, run.env, run.env_params, run.spec, state.env, run.horizon
    )


def _critic_loss(run: RunSpec, params: Any, batch: Batch):
    """The critic's regression loss alone (the trust-region estimators' critic fit)."""
    v = model_for(run, batch).value(params, batch.obs)
    v_loss = estimators.value_loss(v, batch.value_target, batch.mask)
    return v_loss, {"value_loss": v_loss}


def _critic_epoch(run: RunSpec, hp: HParams, batch: Batch, carry, key: jax.Array):
    """One shuffled pass of critic-only Optax steps over ``batch`` ``[T, B, ...]``."""

    def step(c, b):
        params, opt_state = c
        grads, aux = jax.grad(lambda p: _critic_loss(run, p, b), has_aux=True)(params)
        updates, opt_state = run.optimizer.build(hp).update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), aux

    return jax.lax.scan(step, carry, _split(run, batch, key))


def _trust_region_step(run: RunSpec, hp: HParams, carry, batch: Batch, key: jax.Array):
    """``npg``/``trpo``: a natural-gradient policy step, then the critic's Optax epochs.

    The policy step (:func:`jaxpg.natural.trust_region_step`) touches only the
    parameters the policy uses; the critic is then fit to the targets computed
    before the step. Returns ``(carry, aux)`` with the usual metric names plus
    the step's diagnostics (``accepted``, ``step_fraction``, ``cg_residual``,
    ``surrogate_gain``); ``approx_kl`` is the measured mean KL of the step.
    """
    cfg = run.config
    params, opt_state = carry
    pol_batch = natural.PolicyBatch(
        batch.obs, batch.action, batch.old_log_prob, batch.psi, batch.mask
    )
    model = model_for(run, batch)
    params, info = natural.trust_region_step(
        model.policy, params, pol_batch, hp.delta, cg_iters=cfg.cg_iters,
        damping=cfg.cg_damping, backtrack_iters=cfg.backtrack_iters,
        line_search_on=run.estimator.line_search,
    )  # fmt: skip
    epoch = lambda c, k: _critic_epoch(run, hp, batch, c, k)  # noqa: E731
    (params, opt_state), v_aux = jax.lax.scan(
        epoch, (params, opt_state), jax.random.split(key, cfg.num_epochs)
    )
    ent = estimators.masked_mean(networks.entropy(model.policy(params, batch.obs)), batch.mask)
    v_loss = jnp.mean(v_aux["value_loss"])
    aux = {
        "policy_loss": -info.gain,
        "value_loss": v_loss,
        "entropy": ent,
        "approx_kl": info.kl,
        "clip_frac": jnp.zeros(()),
        "loss": v_loss - info.gain,
        "grad_norm": info.grad_norm,
        "accepted": info.accepted,
        "step_fraction": info.fraction,
        "cg_residual": info.cg_residual,
        "surrogate_gain": info.gain,
    }
    return (params, opt_state), aux


def critic_values(run: RunSpec, params: Any, trans: rollout.Transition, hidden0: Any = None):
    """V(s_t) and V(s'_t) in one batched pass over ``[2, T, B, *obs_shape]``.

    Args:
      run: the run's set-up.
      params: the model's parameters.
      trans: the rollout; ``final_obs`` is s'_t, the true next observation.
      hidden0: a recurrent model's state before the rollout's first step: V(s_t)
        comes from replaying the rollout, V(s'_t) from one more step from the
        state after s_t (before its reset) on ``final_obs``.

    Returns:
      ``(values, next_values)``, each ``[T, B]`` float32 (zeros without a critic).
    """
    if not run.estimator.critic:
        zeros = jnp.zeros_like(trans.reward)
        return zeros, zeros
    if run.recurrent:
        _, values, h = networks.unroll(run.model, params, hidden0, trans.obs, trans.done)
        _, next_values, _ = run.model.step(params, h, trans.final_obs)
        return values, next_values
    both = jnp.stack([trans.obs, trans.final_obs])
    flat = both.reshape((-1,) + both.shape[3:])
    v = blocking.chunked_apply(run, lambda o: run.model.value(params, o), flat)
    v = v.reshape(both.shape[:3])
    return v[0], v[1]


def episode_metrics(trans: rollout.Transition, last_return, last_length) -> dict:
    """Mean return/length of the episodes that finished in this rollout.

    Where none finished, the previous values (``last_return``, ``last_length``;
    NaN before the first episode ends) are repeated.

    Args:
      trans: the rollout, ``[T, B]`` leaves (``ep_return``, ``ep_length``,
        ``done``, ``mask``).
      last_return: float32 scalar of the previous update.
      last_length: float32 scalar of the previous update.

    Returns:
      ``{"episode_return", "episode_length", "episodes"}``, float32 scalars
      (``episodes`` the number of episodes that ended).
    """
    ended = trans.done.astype(jnp.float32) * trans.mask
    count = jnp.sum(ended)
    mean_ret = jnp.sum(trans.ep_return * ended) / jnp.maximum(count, 1.0)
    mean_len = jnp.sum(trans.ep_length * ended) / jnp.maximum(count, 1.0)
    return {
        "episode_return": jnp.where(count > 0, mean_ret, last_return),
        "episode_length": jnp.where(count > 0, mean_len, last_length),
        "episodes": count,
    }


def explained_variance(values: jax.Array, target: jax.Array, mask: jax.Array) -> jax.Array:
    """1 − Var[target − V] / Var[target] over the masked batch (the critic's fit).

    1 is a perfect critic, 0 no better than a constant, negative worse than one;
    NaN when the targets do not vary.

    Args:
      values: V(s_t), ``[T, B]`` float32 (any shape).
      target: the critic's regression target, same shape.
      mask: 0/1 float32, same shape.

    Returns:
      A float32 scalar.

    Example:
      >>> t = jnp.array([0.0, 2.0, 4.0]); m = jnp.ones(3)
      >>> float(explained_variance(t, t, m)), float(explained_variance(jnp.zeros(3) + 2.0, t, m))
      (1.0, 0.0)
    """
    mean = estimators.masked_mean(target, mask)
    var = estimators.masked_mean((target - mean) ** 2, mask)
    err = target - values
    err_var = estimators.masked_mean((err - estimators.masked_mean(err, mask)) ** 2, mask)
    return jnp.where(var > 0, 1.0 - err_var / jnp.where(var > 0, var, 1.0), jnp.nan)


def update(run: RunSpec, state: TrainState, hp: HParams) -> tuple[TrainState, dict]:
    """One training update. Pure; see the module docstring for the steps.

    Args:
      run: the run's set-up (static).
      state: the state before the update.
      hp: traced hyperparameters (:class:`HParams` of float32 scalars).

    Returns:
      ``(state, metrics)``: the state after one update (``update_step`` + 1), and
      a dict of float32 scalars: the losses and diagnostics of :func:`loss_fn`,
      ``loss``, ``grad_norm``, ``episode_return``, ``episode_length``,
      ``episodes``, ``env_steps``, ``lr``, with a critic
      ``explained_variance``, and for ``npg``/``trpo`` the step's diagnostics
      (``accepted``, ``step_fraction``, ``cg_residual``, ``surrogate_gain``).
    """
    cfg = run.config
    # The networks see observations normalised with the statistics this update
    # starts from, in the rollout and in the optimisation alike (jaxpg.normalization).
    run = run._replace(model=normalization.with_obs_norm(run.model, state.obs_norm))
    key, k_roll, k_epochs = jax.random.split(state.key, 3)
    hidden0 = state.env.hidden if cfg.rollout_mode == "segments" else initial_hidden(run)
    env_carry, trans = collect(run, state, k_roll)

    reward, reward_norm = trans.reward, state.reward_norm
    if reward_norm is not None:
        if cfg.rollout_mode == "episodes" or run.estimator.grouped:  # fresh episodes
            reward_norm = reward_norm.replace(ret=jnp.zeros_like(reward_norm.ret))
        reward, reward_norm = normalization.scale_rewards(
            reward_norm, trans.reward, trans.done, trans.mask, hp.gamma
        )
    values, next_values = critic_values(run, state.params, trans, hidden0)
    w = estimators.weights(
        cfg.estimator, reward, values, next_values, trans.terminated, trans.truncated,
        gamma=hp.gamma, lam=hp.lam, group_size=cfg.group_size,
    )  # fmt: skip
    psi = estimators.normalize(w.psi, trans.mask) if cfg.normalize else w.psi
    target = w.value_target if w.value_target is not None else jnp.zeros_like(psi)
    batch = Batch(trans.obs, trans.action, trans.log_prob, psi, target, trans.mask)
    if run.recurrent:
        batch = batch._replace(hidden0=hidden0, done=trans.done)
    carry = (state.params, state.opt_state)

    if run.estimator.update == "epochs":
        epoch = lambda c, k: _epoch(run, hp, batch, c, k)  # noqa: E731
        carry, aux = jax.lax.scan(epoch, carry, jax.random.split(k_epochs, cfg.num_epochs))
        aux = jax.tree.map(jnp.mean, aux)
    elif run.estimator.update == "trust_region":
        carry, aux = _trust_region_step(run, hp, carry, batch, k_epochs)
    else:
        # One full-batch step: per trajectory for complete episodes, per step otherwise.
        normalizer = float(cfg.num_envs) if cfg.rollout_mode == "episodes" else jnp.sum(trans.mask)
        carry, aux = _sgd_step(run, hp, normalizer, carry, batch)
    params, opt_state = carry

    ep = episode_metrics(trans, state.last_return, state.last_length)
    steps = state.env_steps + jnp.sum(trans.mask)
    lr = run.optimizer.schedule(hp, state.update_step * run.steps_per_update)
    metrics = {**aux, **ep, "env_steps": steps, "lr": jnp.asarray(lr, jnp.float32)}
    if run.estimator.critic:
        metrics["explained_variance"] = explained_variance(values, w.value_target, trans.mask)
    new_state = TrainState(
        params=params,
        opt_state=opt_state,
        env=env_carry,
        key=key,
        update_step=state.update_step + 1,
        env_steps=steps,
        last_return=ep["episode_return"],
        last_length=ep["episode_length"],
        obs_norm=(
            None
            if state.obs_norm is None
            else normalization.update_stats(state.obs_norm, trans.obs, trans.mask)
        ),
        reward_norm=reward_norm,
    )
    return new_state, metrics


def make_update(
    config: Config, env: Any = None, env_params: Any = None, *, network: Any = None,
    optimizer: Any = None,
):  # fmt: skip
    """Return the jitted ``update(state, hparams) -> (state, metrics)`` for ``config``.

    Args:
      config: static configuration (validated already).
      env: optional environment instance (or id) overriding ``config.env``.
      env_params: optional params for ``env``.
      network: optional networks (:func:`jaxpg.networks.as_model`).
      optimizer: optional Optax transformation or ``learning_rate ->`` factory
        (:mod:`jaxpg.optimizers`).

    Returns:
      A jitted function. ``hparams`` is an :class:`HParams` (``config.hparams()``
      gives the config's values); new values do not recompile. Use
      :func:`make_init` with the same arguments for the matching initial state.

    Example:
      >>> import jax, jaxpg
      >>> cfg = jaxpg.Config(num_envs=2, num_steps=8, num_minibatches=2)
      >>> state = jaxpg.make_init(cfg)(jax.random.key(0))
      >>> state, metrics = jaxpg.make_update(cfg)(state, cfg.hparams())
      >>> int(state.update_step)
      1
    """
    run = make_runspec(config, env, env_params, network=network, optimizer=optimizer)
    return compiling.jit(lambda state, hp: update(run, state, hp))


def make_init(
    config: Config, env: Any = None, env_params: Any = None, *, network: Any = None,
    optimizer: Any = None,
):  # fmt: skip
    """Return ``init(key) -> TrainState`` for ``config`` (arguments as :func:`make_update`).

    Args:
      config: static configuration.
      env: as in :func:`make_update`.
      env_params: as in :func:`make_update`.
      network: as in :func:`make_update`.
      optimizer: as in :func:`make_update`.

    Returns:
      A pure function of a PRNG key (not jitted) giving the run's initial
      :class:`TrainState` (``update_step`` 0, ``num_envs`` fresh envs).

    Example:
      >>> import jax, jaxpg
      >>> cfg = jaxpg.Config(num_envs=2, num_steps=8, num_minibatches=2)
      >>> int(make_init(cfg)(jax.random.key(0)).update_step)
      0
    """
    run = make_runspec(config, env, env_params, network=network, optimizer=optimizer)
    return lambda key: init_state(run, key)
