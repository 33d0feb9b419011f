"""Slow learning tests: each CartPole preset reaches its documented return.

Each test trains ``SEEDS`` seeds in one vmapped program and evaluates each final
policy on 64 fresh episodes; the mean over seeds must reach the preset's target.
CI runs the PPO default (``-m slow -k default``); run them all with
``python -m pytest -m slow tests/test_learning.py``.
"""

import jax
import pytest

import jaxpg
from jaxpg.evaluate import make_evaluate
from jaxpg.presets import CARTPOLE

SEEDS = 4


def mean_eval_return(cfg: jaxpg.Config, seeds: int = SEEDS) -> float:
    keys = jax.random.split(jax.random.key(cfg.seed), seeds)
    out = jax.jit(jax.vmap(jaxpg.make_train(cfg)))(keys)
    evaluate = jax.jit(jax.vmap(make_evaluate(cfg, num_episodes=64)))
    res = evaluate(jax.random.split(jax.random.key(123), seeds), out.state.params["policy"])
    return float(res.returns.mean())


@pytest.mark.slow
def test_default_config_learns_cartpole():
    assert mean_eval_return(jaxpg.Config()) >= 475.0


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CARTPOLE))
def test_cartpole_presets_reach_target(name):
    preset = CARTPOLE[name]
    assert mean_eval_return(preset.config) >= preset.target
