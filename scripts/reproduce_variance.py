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
  # redraw OUT's figures and table.md from its summary.json (no measurement)
  python scripts/reproduce_variance.py --out runs/variance --replot --docs
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jaxpg.cli import main  # noqa: E402


def replot(out: Path) -> None:
    """Rewrite OUT/table.md and OUT/variance_*.png from OUT/summary.json and variance.csv."""
    import csv
    import json

    from jaxpg.variance import report

    summary = json.loads((out / "summary.json").read_text())
    rows = []
    if (out / "variance.csv").exists():
        for r in csv.DictReader((out / "variance.csv").open()):
            row = dict(r)
            for k, v in r.items():
                try:
                    row[k] = float(v) if v != "" else None
                except ValueError:
                    pass
            row["N"] = int(row["N"])
            rows.append(row)
    (out / "table.md").write_text(report.full_markdown(summary, rows))
    figs = report.figures(rows, summary) if rows else {}
    for stem, fig in (figs | report.part_figures(rows, summary)).items():
        fig.savefig(out / f"{stem}.png", dpi=72)


def reproduce(argv: list[str]) -> int:
    docs = "--docs" in argv
    if "--replot" in argv:  # figures and tables again, no measurement
        argv = [a for a in argv if a != "--replot"]
        out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else Path("runs/variance")
        replot(out)
        argv = [a for a in argv if a != "--docs"]
        rc = 0
        return _copy(out) if docs else rc
    argv = [a for a in argv if a != "--docs"]
    out = Path("runs/variance")
    if "--out" in argv:
        out = Path(argv[argv.index("--out") + 1])
    else:
        argv = ["--out", str(out), *argv]
    rc = main(["variance", *argv])
    if rc == 0 and docs:
        return _copy(out)
    return rc


def _copy(out: Path) -> int:
    img = ROOT / "docs" / "img"
    img.mkdir(parents=True, exist_ok=True)
    for png in sorted(out.glob("variance_*.png")):
        shutil.copy(png, img / png.name)
    print(f"copied plots to {img}; the results table is {out / 'table.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(reproduce(sys.argv[1:]))
