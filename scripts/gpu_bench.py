"""Accelerator figures for jaxpg in one short run (``scripts/gpu_bench.sh`` calls it).

Sections, in order of value (each is timed and written as soon as it ends, so a
run cut short still leaves its first results in the JSON):

1. ``learns``: the default ``Config()`` run trains and its final policy is
   evaluated on 128 episodes; CartPole counts as learned at a mean return >= 475.
2. ``ppo``: PPO steps/s at 64 ... 65,536 envs (128 steps, 4 epochs x 4
   minibatches), trace and compile seconds apart from run seconds, and the
   compiled program's memory (arguments + outputs + temporaries).
3. ``seeds``: many seeds vmapped in one program at PureJaxRL's CartPole setting
   (4 envs x 128 steps): 64 seeds over a whole 500k-step run, and 2,048 seeds
   (PureJaxRL's published figure: 2,048 agents x 5e5 steps in about 98 s on an
   A100, about 10M steps/s) over a shorter budget, same throughput measure.
4. ``variance``: per-trajectory gradients per second of
   :func:`jaxpg.variance.per_trajectory_gradients` (CartPole, complete
   episodes, ``reward_to_go``) at K = 1e5 and 1e6.

It also records the backend, the devices, and whether jaxpg's CPU-only
choices are off (:func:`jaxpg.blocking.auto_chunks`, the CPU compiler
options of :mod:`jaxpg.compiling`). ``--smoke`` shrinks every size so the
script's logic can be checked on a CPU in a minute or two.

  python scripts/gpu_bench.py                      # on the accelerator machine
  python scripts/gpu_bench.py --smoke --out /tmp/gpu-smoke.json
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class Sizes:
    """What each section measures; ``smoke`` keeps the logic and drops the sizes."""

    def __init__(self, smoke: bool):
        self.learn_timesteps = 16_384 if smoke else 500_000
        self.envs = [4, 16] if smoke else [64, 256, 1024, 4096, 16384, 65536]
        self.ppo_updates = 2 if smoke else 8
        self.seed_runs = [(2, 4096)] if smoke else [(64, 500_000), (2048, 65_536)]
        self.trajectories = [64, 256] if smoke else [100_000, 1_000_000]
        self.chunk = 32 if smoke else 16_384
        self.max_steps = 50 if smoke else 500
        self.repeats = 1 if smoke else 3


def _memory(compiled) -> int | None:
    m = compiled.memory_analysis()
    if m is None:
        return None
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)


def _timed_compile(fn, *args):
    """``(compiled, trace_s, compile_s)`` of ``jax.jit(fn)`` at ``args``."""

    from jaxpg import compiling

    t0 = time.perf_counter()
    lowered = compiling.jit(fn).lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    return compiled, t1 - t0, time.perf_counter() - t1


def _best_run(compiled, make_args, repeats: int) -> float:
    """Fastest of ``repeats`` calls (seconds), after one warm-up call."""
    import jax

    jax.block_until_ready(compiled(*make_args(0)))
    times = []
    for r in range(repeats):
        args = jax.block_until_ready(make_args(r + 1))
        t = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t)
    return min(times)


def ppo_config(num_envs: int, total: int):
    import jaxpg

    return jaxpg.Config(
        num_envs=num_envs,
        num_steps=128,
        total_timesteps=total,
        num_epochs=4,
        num_minibatches=4,
        lr=2.5e-4,
        ent_coef=0.01,
    )


def learns(sizes: Sizes) -> dict:
    import jax

    import jaxpg
    from jaxpg.evaluate import make_evaluate

    cfg = jaxpg.Config(total_timesteps=sizes.learn_timesteps)
    compiled, trace_s, compile_s = _timed_compile(jaxpg.make_train(cfg), jax.random.key(0))
    t = time.perf_counter()
    out = jax.block_until_ready(compiled(jax.random.key(0)))
    run_s = time.perf_counter() - t
    evaluate = jax.jit(make_evaluate(cfg, num_episodes=128))
    ret = float(evaluate(jax.random.key(1), out.state.params).returns.mean())
    return {
        "config": "Config()" if sizes.learn_timesteps == 500_000 else "Config(smoke budget)",
        "total_timesteps": sizes.learn_timesteps,
        "trace_s": trace_s,
        "compile_s": compile_s,
        "run_s": run_s,
        "final_return": ret,
        "learned": ret >= 475,
    }


def ppo(sizes: Sizes) -> list[dict]:
    import jax

    import jaxpg
    from jaxpg import blocking

    rows = []
    for n in sizes.envs:
        cfg = ppo_config(n, n * 128 * sizes.ppo_updates)
        train = jaxpg.make_train(cfg)
        compiled, trace_s, compile_s = _timed_compile(train, jax.random.key(0))
        dt = _best_run(compiled, lambda r: (jax.random.key(r),), sizes.repeats)
        steps = train.num_updates * n * 128
        row = {
            "num_envs": n,
            "steps": steps,
            "steps_per_s": steps / dt,
            "run_s": dt,
            "trace_s": trace_s,
            "compile_s": compile_s,
            "memory_bytes": _memory(compiled),
            "auto_chunks": blocking.auto_chunks(train.runspec, n * 128 // 4),
        }
        rows.append(row)
        print(
            f"ppo num_envs={n:6d}: {row['steps_per_s']:>12,.0f} steps/s, compile "
            f"{trace_s:.1f} + {compile_s:.1f} s, memory "
            f"{(row['memory_bytes'] or 0) / 2**20:.0f} MiB",
            flush=True,
        )
    return rows


def seeds(sizes: Sizes) -> list[dict]:
    import jax

    import jaxpg

    # On XLA:CPU, vmap over whole runs can deadlock in the batched QR of the
    # orthogonal initialisation (README, Sweeps); the smoke run on CPU uses lecun.
    init = "lecun" if jax.default_backend() == "cpu" else "orthogonal"
    rows = []
    for num_seeds, total in sizes.seed_runs:
        cfg = dataclasses.replace(ppo_config(4, total), weight_init=init)
        train = jaxpg.make_train(cfg)
        keys = lambda r, s=num_seeds: (jax.random.split(jax.random.key(r), s),)  # noqa: E731
        compiled, trace_s, compile_s = _timed_compile(jax.vmap(train), *keys(0))
        dt = _best_run(compiled, keys, max(1, sizes.repeats - 2))
        steps = train.num_updates * 4 * 128 * num_seeds
        rows.append(
            {
                "seeds": num_seeds,
                "weight_init": init,
                "steps_per_seed": steps // num_seeds,
                "steps_per_s": steps / dt,
                "run_s": dt,
                "trace_s": trace_s,
                "compile_s": compile_s,
                "memory_bytes": _memory(compiled),
            }
        )
        print(
            f"seeds={num_seeds:5d} x {steps // num_seeds} steps: {steps / dt:>12,.0f} steps/s "
            f"({dt:.1f} s), compile {trace_s:.1f} + {compile_s:.1f} s",
            flush=True,
        )
    return rows


def variance(sizes: Sizes) -> list[dict]:
    import jax

    import jaxpg
    from jaxpg.runspec import init_state, make_runspec
    from jaxpg.variance import per_trajectory_gradients

    run = make_runspec(jaxpg.Config())
    params = init_state(run, jax.random.key(0)).params
    rows = []
    for k in sizes.trajectories:
        chunk = min(sizes.chunk, k)

        def grads(key, p, k=k, chunk=chunk):
            g = per_trajectory_gradients(
                key, run.env, run.env_params, run.model.policy, p, k,
                estimator="reward_to_go", max_steps=sizes.max_steps, chunk_size=chunk,
            )  # fmt: skip
            return g.mean(0), g.var(0)  # K x d stays on the device

        compiled, trace_s, compile_s = _timed_compile(grads, jax.random.key(0), params)
        dt = _best_run(compiled, lambda r: (jax.random.key(r), params), 1)
        rows.append(
            {
                "trajectories": k,
                "max_steps": sizes.max_steps,
                "chunk_size": chunk,
                "gradients_per_s": k / dt,
                "run_s": dt,
                "trace_s": trace_s,
                "compile_s": compile_s,
                "memory_bytes": _memory(compiled),
            }
        )
        print(
            f"per-trajectory gradients K={k:>9,}: {k / dt:>12,.0f} /s ({dt:.1f} s), "
            f"memory {(rows[-1]['memory_bytes'] or 0) / 2**20:.0f} MiB",
            flush=True,
        )
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the logic on CPU")
    p.add_argument("--out", type=Path, default=None, help="JSON path (default docs/bench/gpu-*)")
    p.add_argument(
        "--skip", default="", help="comma list of sections to skip: learns,ppo,seeds,variance"
    )
    args = p.parse_args(argv)
    import jax

    from jaxpg import compiling

    sizes = Sizes(args.smoke)
    backend = jax.default_backend()
    stamp = datetime.datetime.now(datetime.UTC)
    out = args.out or ROOT / "docs" / "bench" / f"gpu-{backend}-{stamp:%Y-%m-%d}.json"
    result = {
        "date_utc": stamp.isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "machine": {
            "backend": backend,
            "devices": [str(d) for d in jax.devices()],
            "device_kind": jax.devices()[0].device_kind,
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "jax": jax.__version__,
        },
        "cpu_compiler_options_applied": compiling.compiler_options(),
    }
    if backend == "cpu" and not args.smoke:
        print("warning: no accelerator found; these are CPU figures", flush=True)
    skip = set(filter(None, args.skip.split(",")))
    for name, section in (
        ("learns", learns),
        ("ppo", ppo),
        ("seeds", seeds),
        ("variance", variance),
    ):
        if name in skip:
            continue
        t = time.perf_counter()
        result[name] = section(sizes)
        result.setdefault("section_s", {})[name] = time.perf_counter() - t
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        if name == "learns":
            r = result[name]
            print(
                f"default run: return {r['final_return']:.1f} "
                f"({'learned' if r['learned'] else 'NOT learned'}), run {r['run_s']:.1f} s, "
                f"compile {r['trace_s']:.1f} + {r['compile_s']:.1f} s",
                flush=True,
            )
    print(f"wrote {out}", flush=True)
    return 0 if args.smoke or result.get("learns", {}).get("learned", True) else 1


if __name__ == "__main__":
    sys.exit(main())
