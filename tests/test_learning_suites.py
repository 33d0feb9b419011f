"""Slow learning test of a suite preset (jaxpg.presets.SUITES): Navix DoorKey-5x5.

Marked ``slow`` and ``suites`` (neither is in the default run); run with
``python -m pytest -m "slow and suites" tests/test_learning_suites.py``. The other
suites' presets take minutes each on a 2-core CPU and are reproduced by
``scripts/reproduce_presets.py`` instead (docs/suites.md, "Suite presets").
"""

import pytest

from jaxpg.presets import SUITES
from tests.test_learning import mean_eval_return


@pytest.mark.slow
@pytest.mark.suites
def test_navix_doorkey_preset_beats_the_random_policy():
    pytest.importorskip("navix")
    preset = SUITES["navix-doorkey-5x5-ppo"]
    # A random policy scores under 0.1 here (docs/suites.md); the preset's target is 0.5.
    assert mean_eval_return(preset.config) >= preset.target
