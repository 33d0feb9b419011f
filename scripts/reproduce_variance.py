"""Reproduce the CartPole gradient-variance results of docs/variance.md.

Runs ``jaxpg variance`` (every option is passed through) and, with ``--docs``,
copies the PNG plots to ``docs/img/`` (the table is in ``OUT/table.md``).

Examples:
  python scripts/reproduce_variance.py --out runs/variance --docs   # CPU default, minutes
  # accelerator scale (>= 10^6 steps per checkpoint pool, 2^18-trajectory reference):
  python scripts/reproduce_variance.py --out runs/variance_gpu --pool-size 65536 \\
      --ref-size 262144 --chunk-size 4096 --batch-baseline-sizes 2,8,64,512
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jaxpg.cli import main  # noqa: E402


def reproduce(argv: list[str]) -> int:
    docs = "--docs" in argv
    argv = [a for a in argv if a != "--docs"]
    out = Path("runs/variance")
    if "--out" in argv:
        out = Path(argv[argv.index("--out") + 1])
    else:
        argv = ["--out", str(out), *argv]
    rc = main(["variance", *argv])
    if rc == 0 and docs:
        img = ROOT / "docs" / "img"
        img.mkdir(parents=True, exist_ok=True)
        for png in sorted(out.glob("variance_*.png")):
            shutil.copy(png, img / png.name)
        print(f"copied plots to {img}; the results table is {out / 'table.md'}")
    return rc


if __name__ == "__main__":
    sys.exit(reproduce(sys.argv[1:]))
