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
    keys = jax.random.split(jax.random.key(preset.config.seed), 2)
    out = jax.jit(jax.vmap(make_train(preset.config)))(keys)
    evaluate = jax.jit(jax.vmap(make_evaluate(preset.config, 16)))
    ev = evaluate(jax.random.split(jax.random.key(1), 2), out.state.params["policy"])
    per_seed = np.asarray(ev.returns).mean(axis=1)
    assert per_seed.mean() >= preset.target, (name, per_seed, preset.result)
