"""Slow learning checks of the non-CartPole presets (documented results, fewer seeds)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxpg.evaluate import make_evaluate
from jaxpg.presets import OTHER
from jaxpg.train import make_train


@pytest.mark.slow
@pytest.mark.parametrize("name", ["acrobot-ppo", "acrobot-vpg", "pendulum-ppo"])
def test_preset_reaches_its_target(name):
    preset = OTHER[name]
    # Seeds loop through one compiled program: vmapping whole runs (init included)
    # can deadlock XLA:CPU on 2 cores (see README), and this test once hung so.
    keys = jax.random.split(jax.random.key(preset.config.seed), 2)
    eval_keys = jax.random.split(jax.random.key(1), 2)
    train = jax.jit(make_train(preset.config))
    evaluate = jax.jit(make_evaluate(preset.config, 16))
    per_seed = np.array(
        [
            float(evaluate(ek, *_policy(train(k).state)).returns.mean())
            for k, ek in zip(keys, eval_keys, strict=True)
        ]
    )
    assert per_seed.mean() >= preset.target, (name, per_seed, preset.result)


def _policy(state):
    """What evaluation takes from a trained state: params and frozen obs statistics."""
    return state.params, state.obs_norm
