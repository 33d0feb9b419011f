import os

# Tests run on the CPU and must not grab an accelerator's whole memory.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

from hypothesis import settings  # noqa: E402

settings.register_profile("jaxpg", deadline=None, max_examples=25, derandomize=True)
settings.load_profile("jaxpg")
