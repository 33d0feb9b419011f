"""XLA compiler options for jaxpg's compiled programs.

On the CPU backend jaxpg compiles with LLVM optimisation level 1 instead of
XLA's default 3 (``xla_backend_optimization_level``). A training program is
hundreds of small fused loops (env step, threefry, 64-wide MLP layers, Adam);
level 3 spends about a third of the compile time on them and buys no speed
that ``scripts/benchmark.py`` can measure on them (A/B figures in the README's
Throughput section). It also hands each matrix product to XNNPACK's YNN kernels
on its own (``xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT``)
instead of XLA's default grouping of a product with its neighbouring elementwise
ops into one YNN graph: PPO on CartPole trains 4–10% faster with it at 64–1,024
envs and no slower at 4 (same program, alternating runs; README). Both options
exist in every jaxlib that jaxpg supports (0.10.2 to 0.11.x, checked).
Accelerator backends keep their defaults.

The training programs jaxpg compiles itself (the CLI's dispatches,
``make_update``, ``make_sharded_train``, sweeps) go through :func:`jit`; code
that jits ``make_train``'s pure function itself can pass
:func:`compiler_options` to ``jax.jit(..., compiler_options=...)`` for the same
effect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

#: Options for the CPU backend (XLA's debug-option names).
CPU_OPTIONS: dict[str, Any] = {
    "xla_backend_optimization_level": 1,
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT",
}


def compiler_options() -> dict[str, Any] | None:
    """The options for the default backend: :data:`CPU_OPTIONS` on CPU, else ``None``."""
    return dict(CPU_OPTIONS) if jax.default_backend() == "cpu" else None


def jit(fn: Callable, **kwargs) -> Callable:
    """``jax.jit(fn, **kwargs)`` with :func:`compiler_options` (unless given in ``kwargs``).

    Args:
      fn: the function to compile.
      **kwargs: any :func:`jax.jit` keyword (``static_argnums``, ``donate_argnums``...).

    Returns:
      The jitted function.
    """
    kwargs.setdefault("compiler_options", compiler_options())
    return jax.jit(fn, **kwargs)
