"""Measure what streaming metrics out of the compiled run costs in throughput.

Three ways to run the same training (compile excluded, alternated ``--repeats``
times on a warm process):

* ``one scan``: ``jax.jit(make_train(config))``, the whole run as one program,
  no host interaction at all (the baseline);
* ``chunks``: the trainer's default logging (``jaxpg.hostloop.HostLoop``,
  ``log_mode="chunks"``): compiled scans of ``--log-every`` updates dispatched
  asynchronously, rows written to a real ``metrics.csv`` between them, one
  checkpoint at the end;
* ``chunks+ckpt``: the same plus a checkpoint every ``--checkpoint-every``
  updates (what ``jaxpg train`` does by default);
* ``callback``: the same loop with ``log_mode="callback"``: scans of
  ``--checkpoint-every`` updates that send rows to the host with
  ``jax.debug.callback`` once per ``--log-every`` updates.

The machine is shared, so the fastest wall time of each is reported (the least
noisy estimate) with the median process CPU time.

Usage::

    PYTHONPATH=. python scripts/bench_callbacks.py --repeats 7
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import jax

from jaxpg.config import Config
from jaxpg.hostloop import HostLoop as _Loop
from jaxpg.progress import MetricsSink
from jaxpg.run import RunSettings
from jaxpg.runspec import init_state, make_runspec
from jaxpg.train import make_train


class _NoStop:
    requested = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--total-timesteps", type=int, default=500_000)
    args = parser.parse_args()
    config = Config(total_timesteps=args.total_timesteps)
    agent = make_runspec(config)
    hp = config.hparams()
    whole = jax.jit(make_train(config))

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        loops = {}
        no_ckpt = 10**9  # only the final checkpoint
        variants = {
            "chunks": ("chunks", no_ckpt),
            "chunks+ckpt": ("chunks", args.checkpoint_every),
            "callback": ("callback", args.checkpoint_every),
        }
        for name, (mode, every) in variants.items():
            run_dir = Path(tmp) / name.replace("+", "_")
            run_dir.mkdir()
            sink = MetricsSink(run_dir / "metrics.csv", 1.0, progress=False)
            stack.callback(sink.close)
            settings = RunSettings(
                every, keep_checkpoints=1, log_every=args.log_every, log_mode=mode, progress=False
            )
            loops[name] = _Loop(agent, config, settings, run_dir, sink, None)

        def run(mode: str, key: jax.Array) -> None:
            if mode == "one scan":
                jax.block_until_ready(whole(key))
            else:
                jax.block_until_ready(loops[mode].run(init_state(agent, key), hp, _NoStop()))

        modes = ("one scan", *loops)
        for mode in modes:  # compile and warm up
            run(mode, jax.random.key(0))
        times: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
        for r in range(args.repeats):
            for mode in modes:
                start, cpu = time.perf_counter(), time.process_time()
                run(mode, jax.random.key(r))
                times[mode].append((time.perf_counter() - start, time.process_time() - cpu))

    steps = agent.num_updates * config.num_envs * agent.horizon
    print(
        f"CartPole-v1 PPO defaults: {agent.num_updates} updates, {steps:,} env steps; "
        f"log every {args.log_every}, checkpoint every {args.checkpoint_every}; "
        f"{args.repeats} repeats"
    )
    base = min(w for w, _ in times["one scan"])
    base_cpu = statistics.median(c for _, c in times["one scan"])
    for mode, t in times.items():
        wall = min(w for w, _ in t)
        cpu = statistics.median(c for _, c in t)
        print(
            f"  {mode:11s} wall min {wall:.3f} s ({steps / wall:,.0f} steps/s), "
            f"median {statistics.median(w for w, _ in t):.3f} s; CPU median {cpu:.3f} s | "
            f"overhead vs one scan: wall {100 * (wall - base) / base:+.1f}%, "
            f"CPU {100 * (cpu - base_cpu) / base_cpu:+.1f}%"
        )


if __name__ == "__main__":
    main()
