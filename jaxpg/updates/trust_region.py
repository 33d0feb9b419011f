"""``trust_region``: one natural-gradient step of the policy, then the critic's Optax epochs.

The policy step (:func:`jaxpg.natural.trust_region_step`, δ = ``hparams.delta``)
touches only the parameters the policy uses; TRPO's backtracking line search
runs when the estimator row says ``line_search=True`` (``trpo``), else the whole
step is taken (``npg``). The critic is then fit to the targets computed before
the step with ``num_epochs × num_minibatches`` Optax steps on the same batch.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxpg import losses
from jaxpg.updates import base
from jaxpg.updates.base import UpdateKind


def surrogate(log_prob, old_log_prob, psi, mask, clip_eps, normalizer):
    """:func:`jaxpg.losses.ratio_surrogate`, the natural step's own objective."""
    del clip_eps, normalizer
    zero = jnp.zeros(())
    return losses.ratio_surrogate(log_prob, old_log_prob, psi, mask), zero, zero


def normalizer(mask, episodes: bool) -> float:
    """Unused: the surrogate is a masked mean."""
    del mask, episodes
    return 1.0


def _critic_loss(run, hp, params, batch):
    """The critic's regression loss alone."""
    from jaxpg.updates import common

    v = common.model_for(run, batch).value(params, batch.obs)
    v_loss = common.critic_loss(run, hp, v, batch)
    return v_loss, {"value_loss": v_loss}


def _critic_epoch(run, hp, batch, carry, key):
    """One shuffled pass of critic-only Optax steps over ``batch`` ``[T, B, ...]``."""
    import optax

    from jaxpg.updates import common

    def step(c, b):
        params, opt_state = c
        grads, aux = jax.grad(lambda p: _critic_loss(run, hp, p, b), has_aux=True)(params)
        updates, opt_state = run.optimizer.build(hp).update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), aux

    return jax.lax.scan(step, carry, common.split(run, batch, key))


def step(run, hp, carry, batch, key, normalizer):
    """The natural policy step, then the critic's epochs.

    Returns ``(carry, aux)`` with the usual metric names plus the step's
    diagnostics (``accepted``, ``step_fraction``, ``cg_residual``,
    ``surrogate_gain``); ``approx_kl`` is the measured mean KL of the step.
    """
    del normalizer
    from jaxpg import natural, networks
    from jaxpg.updates import common

    cfg = run.config
    params, opt_state = carry
    pol_batch = natural.PolicyBatch(
        batch.obs, batch.action, batch.old_log_prob, batch.psi, batch.mask
    )
    model = common.model_for(run, batch)
    params, info = natural.trust_region_step(
        model.policy, params, pol_batch, hp.delta, cg_iters=cfg.cg_iters,
        damping=cfg.cg_damping, backtrack_iters=cfg.backtrack_iters,
        line_search_on=run.estimator.line_search,
    )  # fmt: skip
    epoch = lambda c, k: _critic_epoch(run, hp, batch, c, k)  # noqa: E731
    (params, opt_state), v_aux = jax.lax.scan(
        epoch, (params, opt_state), jax.random.split(key, cfg.num_epochs)
    )
    ent = losses.masked_mean(networks.entropy(model.policy(params, batch.obs)), batch.mask)
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


def check_config(config: Any) -> None:
    """Separate policy and value networks; minibatches divide the segment batch."""
    if config.shared_torso:
        base.fail(
            "shared_torso",
            config.shared_torso,
            f"estimator {config.estimator!r} needs separate policy and value networks "
            "(the critic fit would move the policy after its trust-region step)",
        )
    if config.network == "gru":
        base.fail(
            "network",
            config.network,
            f"estimator {config.estimator!r} needs separate policy and value networks; "
            "'gru' shares its recurrent torso (allowed: mlp, cnn)",
        )
    base.check_minibatches(config)


TRUST_REGION = UpdateKind(
    name="trust_region",
    step=step,
    surrogate=surrogate,
    normalizer=normalizer,
    optimizer_steps=base.epochs_times_minibatches,
    check_config=check_config,
    check_run=base.check_minibatch_run,
    needs_critic=True,
)
