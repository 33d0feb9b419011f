"""What a search buys: PBT and successive halving against a grid, at an equal env-step budget.

For each repetition r (seed offset), on one task:

* grid: ``--points`` learning rates log-spaced over the space's bounds, one seed each
  (``points × T`` env steps); its best point and its median point;
* PBT: ``population = points`` members for ``T`` steps each (the same budget);
* halving: ``points`` configurations, ``eta`` 2, the last survivor's budget chosen so
  that the whole search takes the same env steps
  (``Σ_rungs members × updates`` = ``points × T``).

Every method is scored by the final return (:func:`jaxpg.stats.final_return`) of the
run it picks (grid: the best point, and the median point; PBT: the best member;
halving: the survivor), all in-search figures. Prints per-method IQM over
repetitions with a 95% bootstrap CI, and the env steps each used.

  python scripts/search_value.py --repeats 3 --steps 50000
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import jaxpg
from jaxpg import search as S
from jaxpg import stats
from jaxpg.space import check_space
from jaxpg.sweep import sweep


def _halving_budget(points: int, eta: int, updates_per_member: int) -> int:
    """The survivor's updates U so that the rungs spend points × updates_per_member."""
    plan = S.rung_plan(points, eta, 1 << 20)
    frac = 0.0
    prev = 0.0
    for n, reach in plan:
        frac += n * (reach / (1 << 20) - prev)
        prev = reach / (1 << 20)
    return int(points * updates_per_member / frac)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", default="CartPole-v1")
    ap.add_argument("--steps", type=int, default=50_000, help="env steps per member (T)")
    ap.add_argument("--points", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--interval", type=int, default=None, help="PBT updates per generation")
    ap.add_argument("--space", default="lr=loguniform:1e-4:1e-2")
    args = ap.parse_args()
    base = jaxpg.Config(env=args.env, total_timesteps=args.steps)
    space = check_space(base, [args.space])
    dim = space.dims[0]
    values = np.geomspace(dim.low, dim.high, args.points).tolist()
    per_update = base.num_envs * base.num_steps
    updates = args.steps // per_update
    h_updates = _halving_budget(args.points, 2, updates)
    h_cfg = base.replace(total_timesteps=h_updates * per_update)
    found: dict[str, list[float]] = {"grid_best": [], "grid_median": [], "pbt": [], "halving": []}
    used: dict[str, float] = {}
    t0 = time.perf_counter()
    for r in range(args.repeats):
        cfg = base.replace(seed=r * args.points)
        g = sweep(cfg, seeds=[cfg.seed], grid={dim.field: values})
        finals = [row["mean"] for row in g.summary]
        found["grid_best"].append(float(np.nanmax(finals)))
        found["grid_median"].append(float(np.nanmedian(finals)))
        used["grid"] = float(sum(run.env_steps[-1] for run in g.runs))
        p = S.pbt(
            cfg, space, S.PBTOptions(args.points, args.interval or S.default_interval(updates)),
            search_seed=r,
        )  # fmt: skip
        found["pbt"].append(stats.final_return(p.episode_return[p.best]))
        used["pbt"] = float(p.env_steps[:, -1].sum())
        h = S.halving(h_cfg.replace(seed=cfg.seed), space, args.points, eta=2, search_seed=r)
        found["halving"].append(stats.final_return(np.concatenate(
            [rung.episode_return[list(rung.members).index(h.best)] for rung in h.rungs
             if h.best in rung.members]
        )))  # fmt: skip
        prev, spent = 0, 0
        for rung in h.rungs:
            spent += len(rung.members) * (rung.updates - prev) * per_update
            prev = rung.updates
        used["halving"] = float(spent)
        print(
            f"repeat {r + 1}/{args.repeats}: "
            + ", ".join(f"{k} {v[-1]:.1f}" for k, v in found.items()),
            flush=True,
        )
    report = {
        "env": args.env,
        "steps_per_member": args.steps,
        "points": args.points,
        "repeats": args.repeats,
        "env_steps_used": used,
        "seconds": time.perf_counter() - t0,
        "methods": {
            k: {
                "iqm": stats.interquartile_mean(v),
                "iqm_ci": stats.iqm_bootstrap_ci(v),
                "values": v,
            }
            for k, v in found.items()
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
