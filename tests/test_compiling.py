"""jaxpg.compiling: CPU-only compiler options reach the compiled program."""

import jax
import jax.numpy as jnp

from jaxpg import compiling


def test_options_only_on_cpu():
    opts = compiling.compiler_options()
    if jax.default_backend() == "cpu":
        assert opts == compiling.CPU_OPTIONS
        assert opts is not compiling.CPU_OPTIONS  # a copy: callers may edit theirs
    else:
        assert opts is None


def test_jit_compiles_with_options_and_same_result():
    f = lambda x: jnp.tanh(x) @ x.T  # noqa: E731
    x = jnp.arange(12.0).reshape(3, 4) / 10
    out = compiling.jit(f)(x)
    assert jnp.allclose(out, jax.jit(f)(x), rtol=1e-6)
    lowered = compiling.jit(f).lower(x)
    assert lowered.compile() is not None


def test_explicit_options_win():
    f = compiling.jit(lambda x: x + 1, compiler_options=None)
    assert int(f(1)) == 2
