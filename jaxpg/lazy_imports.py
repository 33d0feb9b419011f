"""gymnax without the cost of its plotting libraries.

Any ``import gymnax`` runs every environment module, and a few of them import
``matplotlib.pyplot`` and ``seaborn`` at their top for their ``render`` methods
(seaborn brings pandas and ``scipy.stats``). No training run uses them, yet they
are over a second of every ``jaxpg`` command's start-up on a 2-core CPU
(``python -X importtime -c "import jaxpg.train"``; figures in the README's
Throughput section).

:func:`install` (called by ``import jaxpg``) adds a finder to ``sys.meta_path``
that answers only for :data:`DEFERRED` modules, and only when the statement
importing them is at the top level of a ``gymnax`` module: it hands back the
normal module wrapped in :class:`importlib.util.LazyLoader`, so the module
object exists at once and its code runs on first attribute access (a ``render``
call, or your own use of it). Imports from anywhere else, and every module
already imported, are untouched; ``JAXPG_EAGER_IMPORTS=1`` turns the finder off.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys

#: Modules loaded lazily when gymnax's module code imports them.
DEFERRED = frozenset({"matplotlib.pyplot", "seaborn"})


def _importer_is_gymnax_module_code() -> bool:
    """True if the import statement being run is at the top of a ``gymnax`` module."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith("<frozen importlib"):
        frame = frame.f_back
    if frame is None or frame.f_code.co_name != "<module>":
        return False
    return str(frame.f_globals.get("__name__", "")).startswith("gymnax.")


class _DeferGymnaxPlotting(importlib.abc.MetaPathFinder):
    """Lazy specs for :data:`DEFERRED` modules imported by gymnax's module code."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in DEFERRED or not _importer_is_gymnax_module_code():
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.abc.Loader):
            return None
        spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def install() -> bool:
    """Add the finder to ``sys.meta_path`` once.

    Returns:
      True if the finder is installed (now or before), False when
      ``JAXPG_EAGER_IMPORTS`` is set to a non-empty value other than ``0``.
    """
    if os.environ.get("JAXPG_EAGER_IMPORTS", "0") not in ("", "0"):
        return False
    if not any(isinstance(f, _DeferGymnaxPlotting) for f in sys.meta_path):
        sys.meta_path.insert(0, _DeferGymnaxPlotting())
    return True
