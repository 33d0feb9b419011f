"""Slow learning tests: each CartPole preset reaches its documented return.

Each test trains ``SEEDS`` seeds in one vmapped program and evaluates each final
policy on 64 fresh episodes; the mean over seeds must reach the preset's target.
CI runs the PPO default (``-m slow -k default``); run them all with
``python -m pytest -m slow tests/test_learning.py``.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
import pytest

import jaxpg
from jaxpg.evaluate import make_evaluate
from jaxpg.presets import CARTPOLE

SEEDS = 4


def mean_eval_return(cfg: jaxpg.Config, seeds: int = SEEDS, **parts) -> float:
    # Seeds run one after another through one compiled program: vmapping the whole
    # run batches the QR of the orthogonal init, which can deadlock XLA:CPU's
    # two worker threads on a 2-core machine.
    train = jax.jit(jaxpg.make_train(cfg, **parts))
    evaluate = jax.jit(make_evaluate(cfg, num_episodes=64, network=parts.get("network")))
    keys = jax.random.split(jax.random.key(cfg.seed), seeds)
    eval_keys = jax.random.split(jax.random.key(123), seeds)
    returns = [
        float(evaluate(ek, *_policy(train(k).state)).returns.mean())
        for k, ek in zip(keys, eval_keys, strict=True)
    ]
    print("per seed:", [round(r, 1) for r in returns], flush=True)
    return sum(returns) / len(returns)


@pytest.mark.slow
def test_default_config_learns_cartpole():
    assert mean_eval_return(jaxpg.Config()) >= 475.0


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CARTPOLE))
def test_cartpole_presets_reach_target(name):
    preset = CARTPOLE[name]
    assert mean_eval_return(preset.config) >= preset.target


class SharedLayerNormTorso(nn.Module):
    """docs/extending.md's network: one LayerNorm'd tanh torso, two heads."""

    @nn.compact
    def __call__(self, obs):
        x = obs
        for width in (64, 64):
            x = nn.Dense(width, kernel_init=nn.initializers.orthogonal(2**0.5))(x)
            x = jnp.tanh(nn.LayerNorm()(x))
        logits = nn.Dense(2, kernel_init=nn.initializers.orthogonal(0.01))(x)
        value = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))(x)[..., 0]
        return logits, value


@pytest.mark.slow
def test_own_network_and_optimizer_learn_cartpole():
    # A user's flax module and Optax chain (clip, AdamW, a linear-decay schedule).
    cfg = jaxpg.Config()
    steps = (cfg.total_timesteps // (cfg.num_envs * cfg.num_steps)) * 32  # 32 Adam steps/update
    schedule = optax.linear_schedule(3e-3, 0.0, steps)  # 1e-3 reached 261 (4 seeds)
    tx = optax.chain(optax.clip_by_global_norm(0.5), optax.adamw(schedule, eps=1e-5))
    assert mean_eval_return(cfg, network=SharedLayerNormTorso(), optimizer=tx) >= 475.0


def _policy(state):
    """What evaluation takes from a trained state: params and frozen obs statistics."""
    return state.params, state.obs_norm
