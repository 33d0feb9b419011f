"""Slow learning tests of the ladder's destination: trpo/npg, rloo and grpo presets.

Each preset (jaxpg.presets.LADDER) trains 4 seeds one after another and its
final policies are evaluated on 64 fresh episodes each; the mean over seeds
must reach the preset's target (CartPole-v1: trpo ≥ 475; the sequence task:
well above the random policy's 0.125). Run with
``python -m pytest -m slow tests/test_learning_ladder.py``.
"""

import pytest

from jaxpg.presets import LADDER
from tests.test_learning import mean_eval_return


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LADDER))
def test_ladder_preset_reaches_its_target(name):
    preset = LADDER[name]
    assert mean_eval_return(preset.config) >= preset.target
