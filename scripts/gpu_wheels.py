"""Fill ``.gpu/wheels/{jaxpg,rejax}`` with the wheels the GPU machine lacks (run it here).

The accelerator machine (docs/gpu.md) has Python 3.12 with jax, flax, optax, chex,
numpy, matplotlib, seaborn and six, and reaches no package index. This script
downloads, for Python 3.12 and binary wheels only, each top-level requirement with
``--no-deps`` and then, from the wheel's own ``METADATA``, every ``Requires-Dist``
(extras excluded, markers evaluated for CPython 3.12 on Linux x86_64) that the
*reference* interpreter does not have, recursively. The reference is a Python that
holds what the GPU machine holds (a venv with jax 0.11.2, flax, optax, chex, numpy,
matplotlib, seaborn, six from PyPI); without one, :data:`GPU_MACHINE_HAS` (what such a
venv held on 2026-12-04) stands for it.

Two folders, one per process of the run (``scripts/gpu_bench.py`` installs each into
its own ``--target`` folder and gives each process its own ``PYTHONPATH``):

* ``jaxpg``: gymnax 1.0.1 (what jaxpg's ``pyproject.toml`` admits) and its closure;
* ``rejax``: rejax 0.1.3 with gymnax 0.0.9 (rejax unpacks gymnax's old 5-value
  ``step``; ``scripts/bench_worker.py`` adapts either) and its closure.

  python scripts/gpu_wheels.py --reference-python /path/to/py312-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP = {
    "jaxpg": ["gymnax==1.0.1"],
    "rejax": ["rejax==0.1.3", "gymnax==0.0.9"],
}
#: What a Python 3.12 venv holds after ``pip install jax==0.11.2 flax optax chex numpy
#: matplotlib seaborn six`` (PyPI, 2026-12-04): the GPU machine's packages and their
#: dependencies. Used when no ``--reference-python`` is given.
GPU_MACHINE_HAS = {
    "absl-py", "aiofiles", "chex", "contourpy", "cycler", "etils", "flax", "fonttools",
    "fsspec", "humanize", "jax", "jaxlib", "kiwisolver", "markdown-it-py", "matplotlib",
    "mdurl", "ml-dtypes", "msgpack", "numpy", "opt-einsum", "optax", "orbax-checkpoint",
    "packaging", "pandas", "pillow", "pip", "prometheus-client", "protobuf", "psutil",
    "pygments", "pyparsing", "python-dateutil", "pyyaml", "rich", "scipy", "seaborn",
    "simplejson", "six", "tensorstore", "toolz", "treescope", "typing-extensions", "tzdata",
    "uvloop", "zipp",
}  # fmt: skip
#: Markers of the GPU machine's interpreter.
MARKERS = {
    "python_version": "3.12",
    "python_full_version": "3.12.1",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def installed(python: str | None) -> set[str]:
    """Normalised distribution names the reference interpreter holds (empty: none)."""
    if python is None:
        return set(GPU_MACHINE_HAS)
    code = (
        "import importlib.metadata as m, json;"
        "print(json.dumps(sorted({d.metadata['Name'] for d in m.distributions()})))"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return {_norm(n) for n in json.loads(out.stdout)}


def requires(wheel: Path) -> list[str]:
    """The wheel's unconditional ``Requires-Dist`` for :data:`MARKERS` (no extras)."""
    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        lines = z.read(meta).decode().splitlines()
    out = []
    for line in lines:
        if not line.startswith("Requires-Dist:"):
            continue
        req = Requirement(line.split(":", 1)[1].strip())
        if req.marker is None or req.marker.evaluate(MARKERS):
            out.append(str(req))
    return out


def download(spec: str, dest: Path) -> Path:
    before = set(dest.glob("*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
         "--python-version", "3.12", "--platform", "manylinux2014_x86_64",
         "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux_2_28_x86_64",
         "--implementation", "cp", "-d", str(dest), spec],
        check=True,
    )  # fmt: skip
    new = set(dest.glob("*.whl")) - before
    name = _norm(spec.split("=")[0].split("<")[0].split(">")[0].split(";")[0].strip())
    match = [w for w in dest.glob("*.whl") if _norm(w.name.split("-")[0]) == name]
    return (sorted(new) or match)[0]


def fill(folder: str, have: set[str], out: Path) -> list[dict]:
    from packaging.requirements import Requirement

    dest = out / folder
    dest.mkdir(parents=True, exist_ok=True)
    todo, seen, rows = list(TOP[folder]), set(), []
    while todo:
        spec = todo.pop(0)
        name = _norm(Requirement(spec).name)
        if name in seen:
            continue
        seen.add(name)
        wheel = download(spec, dest)
        reqs = requires(wheel)
        pure = wheel.name.endswith("-none-any.whl")
        rows.append({"wheel": wheel.name, "bytes": wheel.stat().st_size, "pure": pure})
        print(f"{folder}: {wheel.name} ({wheel.stat().st_size / 2**20:.2f} MiB"
              f"{'' if pure else ', NOT pure Python'})")  # fmt: skip
        for r in reqs:
            rn = _norm(Requirement(r).name)
            if rn in have or rn in seen:
                continue
            todo.append(r)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--reference-python", default=None, help="a Python holding what the GPU machine has"
    )
    p.add_argument("--out", type=Path, default=ROOT / ".gpu" / "wheels")
    args = p.parse_args(argv)
    have = installed(args.reference_python)
    manifest = {f: fill(f, have, args.out) for f in TOP}
    total = sum(w["bytes"] for rows in manifest.values() for w in rows)
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    print(f"total {total / 2**20:.1f} MiB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
