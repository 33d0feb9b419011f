import atexit
import os
import shutil
import tempfile

# Tests run on the CPU and must not grab an accelerator's whole memory.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# MuJoCo (Brax's renderer) reads MUJOCO_GL once, on import; tests import brax directly,
# before jaxpg could pick the headless backend for them (jaxpg.suites.render).
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")

# One persistent compilation cache per test session (jaxpg.compile_cache), new and empty
# each time: hermetic, and shared by this process and every `jaxpg` subprocess a test
# starts, so a program compiled by one test is loaded, not compiled again, by the next.
# A test that needs its own cache sets JAXPG_COMPILE_CACHE itself.
if "JAXPG_COMPILE_CACHE" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="jaxpg-test-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["JAXPG_COMPILE_CACHE"] = _cache

from hypothesis import settings  # noqa: E402

import jaxpg  # noqa: E402,F401  (jaxpg.xla_flags: set before any test starts JAX)
import jaxpg.compile_cache  # noqa: E402

jaxpg.compile_cache.enable()

settings.register_profile("jaxpg", deadline=None, max_examples=25, derandomize=True)
settings.load_profile("jaxpg")
