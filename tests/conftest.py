import os

# Tests run on the CPU and must not grab an accelerator's whole memory.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# MuJoCo (Brax's renderer) reads MUJOCO_GL once, on import; tests import brax directly,
# before jaxpg could pick the headless backend for them (jaxpg.suites.render).
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")

from hypothesis import settings  # noqa: E402

import jaxpg  # noqa: E402,F401  (jaxpg.xla_flags: set before any test starts JAX)

settings.register_profile("jaxpg", deadline=None, max_examples=25, derandomize=True)
settings.load_profile("jaxpg")
