"""XLA compiler options for jaxpg's compiled programs, and how they are delivered.

On the CPU backend jaxpg compiles with LLVM optimisation level 1 instead of
XLA's default 3 (``xla_backend_optimization_level``). A training program is
hundreds of small fused loops (env step, threefry, 64-wide MLP layers, Adam);
level 3 spends about a quarter of the compile time on them and buys no speed.
Measured with ``scripts/bench_compiler_options.py`` (CartPole PPO at the
rejax-matched settings of ``scripts/benchmark.py``, the README's
``jax.jit(jaxpg.make_train(config))``, 4 variants alternating, 5 runs and 3
compiles each, medians; 2-core machine under a load average of 12-19,
2026-12-04, so ratios are per CPU second of the process)::

    steps/s per CPU s vs XLA's defaults   4 envs   64 envs   1,024 envs
    level 1                                1.012     0.997     0.978
    YNN matrix products only               0.982     1.002     1.025
    both                                   0.956     1.026     1.057
    compile, CPU s: defaults               6.8       6.9       6.8
                    level 1                5.0       5.4       5.3
                    both                   5.1       5.6       5.6

The YNN option (``xla_cpu_experimental_ynn_fusion_type=
LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT``: XNNPACK's YNN kernels get matrix
products only, not also the reductions and convolutions of jaxlib 0.10.2's
default) was used before; it changes sign with the batch size (slower at 4
envs, where the issue measured 171k against 188k steps/s, faster at 1,024), and
one process-wide flag cannot follow the batch size, so it is dropped. Level 1
stays within the noise of XLA's defaults at every size and cuts 22-26% of the
compile time.

``import jaxpg`` delivers the options through ``XLA_FLAGS``
(:func:`jaxpg.xla_flags.apply_cpu_options`), before JAX's backend starts, so
they reach every program the process compiles on the CPU: the CLI's, and a
user's own ``jax.jit(jaxpg.make_train(config))`` or ``jax.jit`` of a
``lax.scan`` over ``make_update``, nested at any depth (``jax.jit``'s own
``compiler_options`` argument is refused by a nested jit). A flag already in
your ``XLA_FLAGS`` keeps your value; accelerator backends, and jaxlibs whose
flags were not checked, keep XLA's defaults. Exported by hand, the same flag
reaches a process that imports jaxpg only after its backend started.
"""

from __future__ import annotations

from typing import Any

import jax

#: Options for the CPU backend (XLA's debug-option names).
CPU_OPTIONS: dict[str, Any] = {"xla_backend_optimization_level": 1}

#: jaxpg's programs are plain ``jax.jit``: the options come from ``XLA_FLAGS``.
jit = jax.jit


def compiler_options() -> dict[str, Any] | None:
    """:data:`CPU_OPTIONS` on CPU, else ``None``: ``jax.jit``'s ``compiler_options``.

    Only for a top-level ``jax.jit`` in a process whose ``XLA_FLAGS`` lack the
    options (jaxpg imported after JAX's backend started); anywhere else the
    flags already apply.
    """
    return dict(CPU_OPTIONS) if jax.default_backend() == "cpu" else None
