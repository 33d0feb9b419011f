"""XLA compiler options for jaxpg's compiled programs, and how they are delivered.

On the CPU backend jaxpg compiles with LLVM optimisation level 1 instead of
XLA's default 3 (``xla_backend_optimization_level``) and hands only whole
matrix products to XNNPACK's YNN kernels
(``xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT``;
jaxlib 0.10.2's default also sends it reductions and convolutions). A training
program is hundreds of small fused loops (env step, threefry, 64-wide MLP
layers, Adam); level 3 spends a good part of the compile time on them.

FIGURES

``import jaxpg`` delivers the options through ``XLA_FLAGS``
(:func:`jaxpg.xla_flags.apply_cpu_options`), before JAX's backend starts, so
they reach every program the process compiles on the CPU: the CLI's, and a
user's own ``jax.jit(jaxpg.make_train(config))`` or ``jax.jit`` of a
``lax.scan`` over ``make_update``, nested at any depth (``jax.jit``'s own
``compiler_options`` argument is refused by a nested jit). A flag already in
your ``XLA_FLAGS`` keeps your value; accelerator backends, and jaxlibs whose
flags were not checked, keep XLA's defaults. Exported by hand, the same flags
reach a process that imports jaxpg only after its backend started.
"""

from __future__ import annotations

from typing import Any

import jax

#: Options for the CPU backend (XLA's debug-option names).
CPU_OPTIONS: dict[str, Any] = {
    "xla_backend_optimization_level": 1,
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT",
}

#: jaxpg's programs are plain ``jax.jit``: the options come from ``XLA_FLAGS``.
jit = jax.jit


def compiler_options() -> dict[str, Any] | None:
    """:data:`CPU_OPTIONS` on CPU, else ``None``: ``jax.jit``'s ``compiler_options``.

    Only for a top-level ``jax.jit`` in a process whose ``XLA_FLAGS`` lack the
    options (jaxpg imported after JAX's backend started); anywhere else the
    flags already apply.
    """
    return dict(CPU_OPTIONS) if jax.default_backend() == "cpu" else None
