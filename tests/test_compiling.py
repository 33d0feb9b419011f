"""jaxpg.compiling: the CPU options reach every program, a user's own nested jit too."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp

from jaxpg import compiling, xla_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_options_only_on_cpu():
    opts = compiling.compiler_options()
    if jax.default_backend() == "cpu":
        assert opts == compiling.CPU_OPTIONS
        assert opts is not compiling.CPU_OPTIONS  # a copy: callers may edit theirs
    else:
        assert opts is None


def test_jit_is_plain_and_nests_in_a_users_jit():
    f = lambda x: jnp.tanh(x) @ x.T  # noqa: E731
    x = jnp.arange(12.0).reshape(3, 4) / 10
    inner = compiling.jit(f)
    nested = jax.jit(lambda x: jax.lax.scan(lambda c, _: (c, inner(x)), 0, None, length=2)[1])
    assert jnp.allclose(nested(x)[1], jax.jit(f)(x), rtol=1e-6)
    assert int(compiling.jit(lambda x: x + 1, compiler_options=None)(1)) == 2


def test_users_own_jit_compiles_with_the_options(tmp_path):
    """XLA's dump of a plain ``jax.jit`` after ``import jaxpg`` records the options."""
    code = "import jaxpg, jax; jax.jit(lambda x: x @ x)(jax.numpy.ones((4, 4))).block_until_ready()"
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    env.update(XLA_FLAGS=f"--xla_dump_to={tmp_path}", JAX_PLATFORMS="cpu")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    dumped = [p for p in tmp_path.rglob("compile_options.textproto") if "lambda" in str(p)]
    assert dumped, sorted(os.listdir(tmp_path))
    text = dumped[0].read_text()
    if xla_flags.apply_cpu_options({}, accelerator=False):  # a jaxlib whose flags were checked
        for name, value in compiling.CPU_OPTIONS.items():
            assert f"{name}: {value}" in text, text
