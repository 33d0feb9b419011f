"""Reproduce the CartPole gradient-variance results of docs/variance.md.

Runs ``jaxpg variance`` (every option is passed through) and, with ``--docs``,
copies the PNG plots to ``docs/img/`` (the tables are in ``OUT/table.md``).

Examples:
  # CPU scale, every part (estimators, decomposition, law, ppo_step, gae_map)
  python scripts/reproduce_variance.py --out runs/variance --docs
  # one part at a time, as docs/variance.md reports them
  python scripts/reproduce_variance.py --out runs/variance_law --parts law
  # accelerator scale (2^16-trajectory test pools, 2^18 reference, R4 to N = 4096,
  # E5b to 2048 episodes, 3 training seeds); run this on a GPU machine
  python scripts/reproduce_variance.py --out runs/variance_gpu --scale accelerator
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
