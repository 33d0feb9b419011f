"""Overhead of PBT's exploit/explore step: the same population with and without it.

Compiles the PBT generations program (:func:`jaxpg.search.make_pbt`) twice, once
with ``exploit=False`` (the population trained as plain vmapped members, the
same loop and the same scan over generations), and times both on the same
inputs, alternating, ``--repeats`` times each; prints the medians and the
overhead ``(with − without) / without``. Compile time is reported apart.

  python scripts/bench_pbt.py                 # P = 16, CartPole-v1 PPO
  python scripts/bench_pbt.py --population 8 --quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import numpy as np

import jaxpg
from jaxpg import search, sharding
from jaxpg.space import check_space


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--num-envs", type=int, default=4)
    ap.add_argument("--num-steps", type=int, default=64)
    ap.add_argument("--updates", type=int, default=64, help="updates per member")
    ap.add_argument("--interval", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="8 updates, interval 2, 2 repeats")
    args = ap.parse_args()
    if args.quick:
        args.updates, args.interval, args.repeats = 8, 2, 2
    cfg = jaxpg.Config(
        num_envs=args.num_envs,
        num_steps=args.num_steps,
        total_timesteps=args.num_envs * args.num_steps * args.updates,
        num_minibatches=4,
    )
    space = check_space(cfg, ["lr=loguniform:1e-4:1e-2", "ent_coef=uniform:0:0.02"])
    mesh = sharding.run_mesh(None)
    seeds = sharding.put_runs(
        np.arange(args.population, dtype=np.int32), sharding.run_sharding(mesh)
    )
    progs = {}
    for name, exploit in (("with", True), ("without", False)):
        opts = search.PBTOptions(args.population, args.interval, exploit=exploit)
        program = search.make_pbt(cfg, space, opts)
        t0 = time.perf_counter()
        init, step = search.compile_pbt(program, mesh, program.num_generations)
        compile_s = time.perf_counter() - t0
        states, hp = init(seeds, np.int32(0))
        gens = np.arange(program.num_generations, dtype=np.int32)
        progs[name] = (step, states, hp, gens, compile_s)
    times: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(args.repeats):
        for name, (step, states, hp, gens, _) in progs.items():
            t0 = time.perf_counter()
            jax.block_until_ready(step(states, hp, np.int32(0), gens))
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    steps = args.population * cfg.total_timesteps
    report = {
        "population": args.population,
        "updates": args.updates,
        "interval": args.interval,
        "env_steps": steps,
        "median_s": med,
        "all_s": times,
        "compile_s": {k: v[4] for k, v in progs.items()},
        "overhead": (med["with"] - med["without"]) / med["without"],
        "env_steps_per_s": {k: steps / v for k, v in med.items()},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
