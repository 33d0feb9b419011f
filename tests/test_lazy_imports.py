"""jaxpg.lazy_imports: gymnax's plotting imports are deferred, everyone else's are not."""

import os
import subprocess
import sys

import pytest

from jaxpg import lazy_imports


def _run(code: str, **env) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


_LOADED = "print('seaborn.rcmod' in sys.modules, 'scipy.stats' in sys.modules)"


@pytest.mark.parametrize("eager, loaded", [("0", "False False"), ("1", "True True")])
def test_gymnax_plotting_runs_only_when_used(eager, loaded):
    code = f"""
import sys
import jaxpg.envs  # imports gymnax, whose pong module imports seaborn and pyplot
{_LOADED}
import seaborn, matplotlib.pyplot as plt
assert len(seaborn.color_palette("cubehelix", 3)) == 3  # first use runs the module
assert callable(plt.figure)
{_LOADED}
"""
    assert _run(code, JAXPG_EAGER_IMPORTS=eager).splitlines() == [loaded, "True True"]


def test_other_importers_are_eager():
    # jaxpg's finder answers only for gymnax's module code.
    code = f"import sys, jaxpg, seaborn\n{_LOADED}"
    assert _run(code) == "True True"


def test_install_is_idempotent_and_can_be_turned_off(monkeypatch):
    monkeypatch.delenv("JAXPG_EAGER_IMPORTS", raising=False)
    assert lazy_imports.install() and lazy_imports.install()
    assert sum(isinstance(f, lazy_imports._DeferGymnaxPlotting) for f in sys.meta_path) == 1
    monkeypatch.setenv("JAXPG_EAGER_IMPORTS", "1")
    assert not lazy_imports.install()
