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
4. Gradient ascent on the surrogate (Optax minimises −surrogate), as the
   estimator's update kind does it (:mod:`jaxpg.updates`): one full-batch step
   (``step``), PPO's ``num_epochs × num_minibatches`` clipped steps
   (``epochs``), or a natural-gradient policy step followed by the critic's
   epochs (``trust_region``). The optimizer is the run's Optax chain built from
   ``hparams`` (global-norm clipping and the learning-rate schedule included;
   :mod:`jaxpg.optimizers`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxpg import blocking, compiling, estimators, groups, networks, normalization, rollout
from jaxpg.config import Config, HParams
from jaxpg.runspec import RunSpec, TrainState, init_state, initial_hidden, make_runspec
from jaxpg.updates import common

# The shared machinery lives with the update kinds (jaxpg.updates); these names stay
# importable from here.
Batch = common.Batch
model_for = common.model_for
loss_fn = common.loss_fn
_minibatches = common.minibatches
_sequence_minibatches = common.sequence_minibatches


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
    w = estimators.batch_weights(
        cfg.estimator, reward, values, next_values, trans.terminated, trans.truncated,
        trans.mask, gamma=hp.gamma, lam=hp.lam, group_size=cfg.group_size,
        normalize_advantages=cfg.normalize,
    )  # fmt: skip
    psi = w.psi
    target = w.value_target if w.value_target is not None else jnp.zeros_like(psi)
    batch = Batch(trans.obs, trans.action, trans.log_prob, psi, target, trans.mask)
    if run.recurrent:
        batch = batch._replace(hidden0=hidden0, done=trans.done)
    if cfg.switched_on("value_clip_eps"):
        batch = batch._replace(old_value=values)
    carry = (state.params, state.opt_state)

    kind = run.estimator.update
    normalizer = kind.normalizer(trans.mask, cfg.rollout_mode == "episodes")
    carry, aux = kind.step(run, hp, carry, batch, k_epochs, normalizer)
    params, opt_state = carry

    ep = episode_metrics(trans, state.last_return, state.last_length)
    steps = state.env_steps + jnp.sum(trans.mask)
    lr = run.optimizer.schedule(hp, state.update_step * run.steps_per_update)
    if cfg.switched_on("kl_adaptive_lr"):  # the multiplier the update ended with
        import optax

        lr = lr * optax.tree_utils.tree_get(opt_state, "kl_lr_scale")
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
