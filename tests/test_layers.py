"""The layering of the package, checked from the source (docs/extending.md, "The layers")."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "jaxpg"
# Modules whose functions are traced into compiled programs: they must not import
# host I/O (files, checkpoints, metrics, plots, the run directory, rendering).
COMPILED = (
    "returns", "estimators", "config", "networks", "envs", "optimizers", "rollout",
    "runspec", "blocking", "update", "loop", "train", "shuffle", "losses",
    "updates/__init__", "updates/base", "updates/common", "updates/step", "updates/epochs",
    "updates/trust_region",
)  # fmt: skip
HOST_IO = ("files", "checkpoint", "progress", "plotting", "run", "render", "commands", "cli")


def jaxpg_imports(path: Path) -> set[str]:
    """The ``jaxpg`` submodules ``path`` imports (anywhere in the file), by first name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jaxpg"):
            parts = node.module.split(".")
            if len(parts) > 1:
                found.add(parts[1])
            else:
                found.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("jaxpg."):
                    found.add(a.name.split(".")[1])
    return found


def test_library_never_imports_the_cli():
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if rel.parts[0] in ("commands", "cli.py", "__main__.py"):
            continue
        bad = jaxpg_imports(path) & {"commands", "cli"}
        assert not bad, f"jaxpg/{rel} imports {bad}"


def test_compiled_code_never_imports_host_io():
    for name in COMPILED:
        bad = jaxpg_imports(PKG / f"{name}.py") & set(HOST_IO)
        assert not bad, f"jaxpg/{name}.py imports {bad}"


def test_files_is_the_bottom_layer():
    assert jaxpg_imports(PKG / "files.py") == set()
    text = (PKG / "files.py").read_text()
    assert "import jax" not in text
