"""Benchmark: sweep throughput for 1…64 seeds in one program vs. one after another.

For each seed count n the script compiles the sweep program once
(``jaxpg.sweep.make_batched_train``: n runs vmapped, the program
``jaxpg.sweep.sweep`` runs, sharded over the available devices) and times it;
the baseline runs the single-run program ``jax.jit(make_train(config))``
(compiled once) for the same n seeds one after another.
Repeats alternate the two so that load from other processes hits both alike.
Reported: medians over repeats of the wall time, total throughput (env steps
of all n runs per second), the speed-up, and compile times (separate).

Usage::

  python scripts/bench_sweep.py            # 1..64 seeds, 3 repeats (minutes)
  python scripts/bench_sweep.py --quick    # 1..4 seeds, tiny runs (< 1 minute)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import numpy as np

import jaxpg
from jaxpg import sharding
from jaxpg.config import HParams
from jaxpg.sweep import make_batched_train


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t0


def bench(config: jaxpg.Config, seed_counts: list[int], repeats: int) -> list[dict]:
    """Median timings per seed count; see the module docstring."""
    train = jaxpg.make_train(config)
    hp = config.hparams()
    steps_per_run = train.num_updates * config.num_envs * config.num_steps
    mesh = sharding.run_mesh()
    shard = sharding.run_sharding(mesh)

    t0 = time.perf_counter()
    single = jax.jit(lambda s: train(jax.random.key(s)).metrics["episode_return"])
    single = single.lower(np.int32(0)).compile()
    single_compile = time.perf_counter() - t0

    programs = {}
    for n in seed_counts:
        padded = sharding.round_up(n, mesh.devices.size)
        batched = make_batched_train(config)
        hps = HParams(*(sharding.put_runs(np.full(padded, x, np.float32), shard) for x in hp))
        seeds = sharding.put_runs(np.arange(padded, dtype=np.int32), shard)
        t0 = time.perf_counter()
        compiled = jax.jit(batched, out_shardings=shard).lower(seeds, hps).compile()
        programs[n] = (compiled, (seeds, hps), time.perf_counter() - t0)
        _timed(compiled, *programs[n][1])  # warm-up
    _timed(single, np.int32(0))

    times = {n: {"vmap": [], "seq": []} for n in seed_counts}
    for _ in range(repeats):
        for n in seed_counts:
            compiled, inputs, _ = programs[n]
            times[n]["vmap"].append(_timed(compiled, *inputs))
            t0 = time.perf_counter()
            for s in range(n):
                jax.block_until_ready(single(np.int32(s)))
            times[n]["seq"].append(time.perf_counter() - t0)

    rows = []
    for n in seed_counts:
        v = statistics.median(times[n]["vmap"])
        s = statistics.median(times[n]["seq"])
        rows.append(
            {
                "seeds": n,
                "env_steps": n * steps_per_run,
                "vmap_s": v,
                "seq_s": s,
                "vmap_steps_per_s": n * steps_per_run / v,
                "seq_steps_per_s": n * steps_per_run / s,
                "speedup": s / v,
                "vmap_compile_s": programs[n][2],
                "seq_compile_s": single_compile,
                "vmap_all_s": times[n]["vmap"],
                "seq_all_s": times[n]["seq"],
            }
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="1..4 seeds, tiny runs (< 1 min)")
    p.add_argument("--max-seeds", type=int, default=None)
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--num-envs", type=int, default=None)
    p.add_argument("--num-steps", type=int, default=None)
    p.add_argument("--total-timesteps", type=int, default=None)
    p.add_argument("--json", default=None, metavar="FILE", help="also write the rows as JSON")
    args = p.parse_args()
    quick = dict(max_seeds=4, repeats=3, num_envs=4, num_steps=32, total_timesteps=1024)
    full = dict(max_seeds=64, repeats=3, num_envs=4, num_steps=128, total_timesteps=16384)
    opts = {
        k: (getattr(args, k) if getattr(args, k) is not None else v)
        for k, v in (quick if args.quick else full).items()
    }
    config = jaxpg.Config(
        num_envs=opts["num_envs"],
        num_steps=opts["num_steps"],
        total_timesteps=opts["total_timesteps"],
    )
    counts = [2**i for i in range(opts["max_seeds"].bit_length()) if 2**i <= opts["max_seeds"]]
    rows = bench(config, counts, opts["repeats"])
    print(
        f"# {config.env} {config.estimator}, num_envs={config.num_envs}, "
        f"num_steps={config.num_steps}, total_timesteps={config.total_timesteps} per run; "
        f"devices: {jax.devices()}; medians of {opts['repeats']} repeats"
    )
    print(
        "| seeds | one program (s) | one after another (s) | program steps/s "
        "| sequential steps/s | speed-up | compile (s) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['seeds']} | {r['vmap_s']:.3f} | {r['seq_s']:.3f} | "
            f"{r['vmap_steps_per_s']:,.0f} | {r['seq_steps_per_s']:,.0f} | "
            f"{r['speedup']:.1f}× | {r['vmap_compile_s']:.1f} |"
        )
    print(f"single-run program compile: {rows[0]['seq_compile_s']:.1f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"config": config.to_dict(), "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
