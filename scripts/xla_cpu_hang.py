"""Reproduce the XLA:CPU deadlock (batched QR of a vmapped init) that ``jaxpg.xla_flags`` avoids.

Each trial is a fresh process that compiles a ``jax.vmap`` over 2 seeds of one
128-step Breakout-MinAtar rollout (64 envs) and calls it 4 times; a trial that has
not finished after ``--timeout`` seconds is counted as hung (its threads all wait,
the CPU is idle). Trials alternate between XLA's default scheduler and the one
jaxpg sets, so both see the same machine load::

    python scripts/xla_cpu_hang.py --trials 3

Measured 2026-11-30 on the 2-core dev CPU (jax/jaxlib 0.10.2), ``--trials 6``: the
default scheduler hung in 6 of 6 trials, jaxpg's setting finished 6 of 6 (25-35 s each
under load); an earlier ``--trials 3`` run: 3 of 3 hung, 3 of 3 finished.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

CHILD = """
import time, jax
import jaxpg
from jaxpg import rollout, runspec
from jaxpg.presets import get_preset
run = runspec.make_runspec(get_preset("breakout-minatar-ppo").config)
def segment(key):
    state = runspec.init_state(run, key)
    _, tr = rollout.rollout_segment(key, run.model.policy, state.params, run.env,
                                    run.env_params, run.spec, state.env, 128)
    return tr.reward.sum()
f = jax.jit(jax.vmap(segment))
keys = jax.random.split(jax.random.key(0), 2)
for _ in range(4):
    jax.block_until_ready(f(keys))
print("finished")
"""

SETTINGS = {
    "xla-default": "--xla_cpu_enable_concurrency_optimized_scheduler=true",
    "jaxpg": "--xla_cpu_enable_concurrency_optimized_scheduler=false",
}


def trial(flags: str, timeout: float) -> tuple[str, float]:
    """Run the child once with ``XLA_FLAGS=flags``; return (outcome, seconds)."""
    env = {**os.environ, "XLA_FLAGS": flags}
    start = time.perf_counter()
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD], env=env, timeout=timeout, capture_output=True, text=True
        )
    except subprocess.TimeoutExpired:
        return "hung", time.perf_counter() - start
    outcome = "finished" if "finished" in out.stdout else f"failed: {out.stderr.strip()[-200:]}"
    return outcome, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds before 'hung'")
    parser.add_argument("--only", choices=sorted(SETTINGS), help="run one setting only")
    args = parser.parse_args()
    settings = {k: v for k, v in SETTINGS.items() if args.only in (None, k)}
    counts = {name: 0 for name in settings}
    for i in range(args.trials):
        for name, flags in settings.items():
            outcome, seconds = trial(flags, args.timeout)
            counts[name] += outcome == "hung"
            print(f"trial {i + 1} {name:12s} {outcome} ({seconds:.0f} s)", flush=True)
    for name in settings:
        print(f"{name}: hung in {counts[name]} of {args.trials} trials")


if __name__ == "__main__":
    main()
