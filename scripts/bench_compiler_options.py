"""A/B of XLA:CPU compiler options on jaxpg's PPO: which of them pay, at which size.

Each variant is a worker process (``scripts/bench_worker.py``) started with its own
``XLA_FLAGS``, which name both options explicitly, so jaxpg's own choice
(:mod:`jaxpg.xla_flags`) never interferes. The program is the README's
``jax.jit(jaxpg.make_train(config))`` at the rejax-matched settings of
``scripts/benchmark.py``. At each num_envs every variant compiles the program
``--compile-repeats`` times and runs it ``--repeats`` times, the variants
alternating (reversed every other round) so a shared machine's noise hits all
alike; reported are median steps/s, the median over rounds of its ratio to
XLA's defaults (wall-clock, and per CPU second of the process: on a loaded
machine the CPU ratio counts the work done, whatever the wait for a core), and
median compile seconds (wall and CPU).

  python scripts/bench_compiler_options.py --num-envs 4,64,1024 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import benchmark  # noqa: E402

LEVEL = "--xla_backend_optimization_level"
YNN = "--xla_cpu_experimental_ynn_fusion_type"
#: XLA's defaults in jaxlib 0.10.2 (read from a dump's ``compile_options.textproto``).
YNN_DEFAULT = (
    "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION,"
    "LIBRARY_FUSION_TYPE_REDUCE"
)
VARIANTS = {
    "default": f"{LEVEL}=3 {YNN}={YNN_DEFAULT}",
    "level1": f"{LEVEL}=1 {YNN}={YNN_DEFAULT}",
    "dot_only": f"{LEVEL}=3 {YNN}=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT",
    "both": f"{LEVEL}=1 {YNN}=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT",
}


def measure(args, num_envs: int) -> dict:
    s = benchmark.settings_for(num_envs, None, args)
    names = args.variants.split(",")
    workers, out = (
        {},
        {n: {"compile_s": [], "compile_cpu_s": [], "run_s": [], "run_cpu_s": []} for n in names},
    )
    for n in names:
        w = benchmark.Worker(
            n, sys.executable, HERE.parent, env_overrides={"XLA_FLAGS": VARIANTS[n]}
        )
        rep = w.ask(cmd="prepare", system="jaxpg", settings=s)
        workers[n], out[n]["steps"] = w, rep["steps"]
        out[n]["compile_s"].append(rep["compile_s"])
        out[n]["compile_cpu_s"].append(rep["compile_cpu_s"])
    for r in range(1, args.compile_repeats):
        for n in names if r % 2 == 0 else names[::-1]:
            rep = workers[n].ask(cmd="recompile")
            out[n]["compile_s"].append(rep["compile_s"])
            out[n]["compile_cpu_s"].append(rep["compile_cpu_s"])
    for r in range(args.repeats):
        for n in names if r % 2 == 0 else names[::-1]:
            rep = workers[n].ask(cmd="run", seed=r)
            out[n]["run_s"].append(rep["run_s"])
            out[n]["run_cpu_s"].append(rep["run_cpu_s"])
    for w in workers.values():
        w.close()
    base = out[names[0]]
    line = f"num_envs={num_envs:5d}"
    for n in names:
        d = out[n]
        d["steps_per_s"] = d["steps"] / statistics.median(d["run_s"])
        # Ratio per round (same moment of the machine), then the median over rounds.
        d["ratio"] = statistics.median(
            b / a for a, b in zip(d["run_s"], base["run_s"], strict=True)
        )
        d["cpu_ratio"] = statistics.median(
            b / a for a, b in zip(d["run_cpu_s"], base["run_cpu_s"], strict=True)
        )
        d["compile_med_s"] = statistics.median(d["compile_s"])
        d["compile_cpu_med_s"] = statistics.median(d["compile_cpu_s"])
        line += (
            f" | {n}: {d['steps_per_s'] / 1e3:.0f}k ({d['ratio']:.3f}x wall, "
            f"{d['cpu_ratio']:.3f}x CPU), compile "
            f"{d['compile_med_s']:.1f}s ({d['compile_cpu_med_s']:.1f} CPU s)"
        )
    print(line, flush=True)
    return {"num_envs": num_envs, "settings": s, "variants": out}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--num-envs", default="4,64,1024")
    p.add_argument("--variants", default=",".join(VARIANTS), help="first is the reference")
    p.add_argument("--num-steps", type=int, default=128)
    p.add_argument("--total-timesteps", type=int, default=500_000)
    p.add_argument("--min-updates", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--compile-repeats", type=int, default=3)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    rows = []
    for n in map(int, args.num_envs.split(",")):
        rows.append(measure(args, n))
        if args.json:
            args.json.write_text(json.dumps({"flags": VARIANTS, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
