"""Accelerator figures for jaxpg in one command of at most 8 minutes (docs/gpu.md).

Made for the accelerator machine this project can borrow (one H200, Python 3.12 with
jax + its CUDA plugin, flax, optax, chex, numpy, matplotlib, seaborn, six; no gymnax,
no gymnasium, no package index). ``scripts/gpu_bench.sh`` runs this file.

1. Set-up (no JAX in this process): the wheels of ``.gpu/wheels/jaxpg`` and
   ``.gpu/wheels/rejax`` (filled on a connected machine by ``scripts/gpu_wheels.py``)
   whose distributions the interpreter lacks are installed with ``pip install
   --no-index --no-deps --target`` into one folder per process; jaxpg's version
   ranges (``pyproject.toml``) are checked against what is found. A range that does
   not admit the installed version is reported (which one to widen after testing),
   and the run goes on.
2. Parts, each in its own process with its own time limit (so one slow part cannot
   eat the rest; a part cut short keeps the rows it wrote), in order of value:

   ``learns`` ``Config()`` trains and its policy returns >= 475 on 128 episodes;
   ``ppo_peer`` PPO steps/s at 64 ... 65,536 envs, jaxpg and rejax alternating in two
   worker processes (``scripts/bench_worker.py``, the settings of
   ``scripts/benchmark.py``), with compile times and memory;
   ``seeds`` 2,048 seeds vmapped at PureJaxRL's CartPole setting;
   ``variance`` per-trajectory gradients/s at K = 1e5 and 1e6;
   ``sweep`` 256 runs (16 learning rates x 16 seeds) in one program;
   ``ab_blocking``, ``ab_compiler``, ``ab_shuffle``, ``ab_xla_flag``: jaxpg's
   CPU-tuned choices timed against their alternative on this backend.

   Every part records the device allocator's peak (``memory_stats()``) and each
   program's compiled size (``memory_analysis()``).
3. Results: ``docs/bench/gpu-<device>-<date>.json``, written after every part, and
   the page ``docs/gpu.md`` made from it (``--page JSON`` remakes the page alone).

  python scripts/gpu_bench.py                       # on the accelerator machine
  python scripts/gpu_bench.py --smoke --out-dir /tmp/gpu-smoke   # the logic, on a CPU
  python scripts/gpu_bench.py --page docs/bench/gpu-h200-2026-12-04.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import importlib.metadata
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import types
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(ROOT), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

#: (part, time limit in seconds on the accelerator). The sum stays under BUDGET_S.
PARTS = [
    ("learns", 70),
    ("ppo_peer", 150),
    ("seeds", 50),
    ("variance", 50),
    ("sweep", 40),
    ("ab_blocking", 25),
    ("ab_compiler", 25),
    ("ab_shuffle", 25),
    ("ab_xla_flag", 35),
]
#: Whole run (set-up included), seconds: 8 minutes less a margin for the machine's start.
BUDGET_S = 470
#: PureJaxRL's published CartPole figure: 2,048 agents x 5e5 steps in about 98 s on one
#: A100 (about 1e7 steps/s), the anchor of the ``seeds`` part.
PUREJAXRL_ANCHOR_STEPS_PER_S = 1.0e7
#: The options ``jaxpg/compiling.py`` applied on CPU when this script was written; used
#: only if jaxpg no longer exposes its CPU options under a known name.
FALLBACK_CPU_OPTIONS = {
    "xla_backend_optimization_level": 1,
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT",
}
FALLBACK_SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
#: Wheels installed even where a distribution of that name exists (their version matters).
ALWAYS = {"gymnax", "rejax"}


class Sizes:
    """What each part measures; ``smoke`` keeps every code path and drops the sizes."""

    def __init__(self, smoke: bool):
        self.smoke = smoke
        self.learn_timesteps = 8192 if smoke else None  # None: Config()'s own budget
        # In order of value, so that a part cut short still spans the range.
        self.envs = [4, 16] if smoke else [64, 65536, 1024, 16384, 256, 4096]
        self.ppo_total = 4096 if smoke else 1 << 20
        self.min_updates = 2 if smoke else 4
        self.repeats = 2 if smoke else 3
        self.seeds = (2, 2048) if smoke else (2048, 16_384)  # (seeds, steps per seed)
        self.trajectories = [64, 256] if smoke else [100_000, 1_000_000]
        self.chunk = 64 if smoke else 16_384
        self.max_steps = 50 if smoke else 500
        self.sweep = (2, 2, 1024) if smoke else (16, 16, 65_536)  # lrs, seeds, steps
        self.ab_envs = 16 if smoke else 4096
        self.ab_total_updates = 2 if smoke else 4
        self.flag_envs = 4 if smoke else 256
        self.perm_sizes = [1 << 10, 1 << 14] if smoke else [1 << 17, 1 << 20, 1 << 23]


def _kind(device_kind: str) -> str:
    """``"NVIDIA H200"`` -> ``"h200"``: the device part of the JSON's name."""
    word = device_kind.split()[-1] if device_kind else "unknown"
    return "".join(c for c in word.lower() if c.isalnum()) or "unknown"


# -- set-up (no JAX here) -------------------------------------------------------------


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _wheel_name(wheel: Path) -> str:
    return wheel.name.split("-")[0].lower().replace("_", "-")


def install(wheels: Path, site: Path) -> dict:
    """Install the wheels of ``wheels`` the interpreter lacks into ``site`` (no index).

    A wheel is skipped when the interpreter already has its distribution (any
    version), except :data:`ALWAYS`. ``pip install --no-index --no-deps --target``;
    without pip, a pure-Python wheel is unpacked (that is all its install does).
    """
    found = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
    report = {"wheels": str(wheels), "site": str(site), "installed": [], "present": {}}
    if not found:
        report["error"] = f"no wheels in {wheels}"
        return report
    todo = []
    for w in found:
        name = _wheel_name(w)
        have = _dist_version(name)
        if have is not None and name not in ALWAYS:
            report["present"][name] = have
        else:
            todo.append(w)
    site.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
           "--disable-pip-version-check", "--target", str(site), *map(str, todo)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode == 0:
        report["method"] = "pip --target"
    else:
        report["method"] = "unzip (pip failed: " + done.stderr.strip()[-200:] + ")"
        for w in todo:
            with zipfile.ZipFile(w) as z:
                z.extractall(site)
    report["installed"] = [w.name for w in todo]
    return report


def check_ranges(paths: list[str]) -> list[dict]:
    """jaxpg's ``pyproject.toml`` dependencies against the versions found on ``paths``."""
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    saved = list(sys.path)
    sys.path[:0] = paths
    importlib.invalidate_caches()
    rows = []
    try:
        try:
            from packaging.requirements import Requirement
        except ImportError:  # pragma: no cover - packaging ships with matplotlib
            Requirement = None
        for dep in deps:
            if Requirement is None:
                rows.append({"requirement": dep, "found": None, "ok": None})
                continue
            req = Requirement(dep)
            found = _dist_version(req.name)
            ok = found is not None and req.specifier.contains(found, prereleases=True)
            rows.append({"name": req.name, "range": str(req.specifier), "found": found, "ok": ok})
    finally:
        sys.path[:] = saved
        importlib.invalidate_caches()
    return rows


def _range_advice(rows: list[dict]) -> list[str]:
    out = []
    for r in rows:
        if r.get("ok") is False:
            if r["found"] is None:
                out.append(f"{r['name']}: not found (range {r['range']})")
            else:
                out.append(
                    f"{r['name']} {r['found']} is outside {r['range']}: if this run's figures "
                    f"and the test suite pass with it, widen the range to admit {r['found']}"
                )
    return out


# -- the part processes --------------------------------------------------------------


class Part:
    """What a part process writes: ``data`` dumped to ``path`` after every ``emit``."""

    def __init__(self, path: Path, sizes: Sizes, args):
        self.path, self.sizes, self.args = path, sizes, args
        self.data: dict = {}

    def emit(self, **kv) -> None:
        self.data.update(kv)
        self.path.write_text(json.dumps(self.data, indent=2, default=str))

    def add_row(self, row: dict, key: str = "rows") -> None:
        self.data.setdefault(key, []).append(row)
        self.emit()


def _compiled_bytes(compiled) -> int | None:
    m = compiled.memory_analysis()
    if m is None:
        return None
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)


def _peak_bytes() -> int | None:
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def _compile(fn, *args, compiler_options="jaxpg"):
    """``(compiled, trace_s, compile_s)``; by default with jaxpg's own options."""
    import jax

    from jaxpg import compiling

    jit = getattr(compiling, "jit", jax.jit) if compiler_options == "jaxpg" else None
    t0 = time.perf_counter()
    if jit is not None:
        lowered = jit(fn).lower(*args)
    else:
        lowered = jax.jit(fn, compiler_options=compiler_options).lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    return compiled, t1 - t0, time.perf_counter() - t1


def _call_s(compiled, *args) -> float:
    import jax

    args = jax.block_until_ready(args)
    t = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    return time.perf_counter() - t


def _alternate(programs: dict, make_args, repeats: int) -> dict:
    """Each program once (warm-up), then ``repeats`` rounds A B, B A, ...: seconds."""
    names = list(programs)
    for n in names:
        _call_s(programs[n], *make_args(0))
    times: dict = {n: [] for n in names}
    for r in range(repeats):
        for n in names if r % 2 == 0 else names[::-1]:
            times[n].append(_call_s(programs[n], *make_args(r + 1)))
    return times


def ppo_config(num_envs: int, total: int, **kw):
    """PureJaxRL's CartPole PPO setting at ``num_envs`` (128 steps, 4 x 4, lr 2.5e-4)."""
    import jaxpg

    return jaxpg.Config(
        num_envs=num_envs, num_steps=128, total_timesteps=total, num_epochs=4,
        num_minibatches=4, lr=2.5e-4, ent_coef=0.01, **kw,
    )  # fmt: skip


def _ab_row(name: str, times: dict, steps: int | None, extra: dict) -> dict:
    med = {k: statistics.median(v) for k, v in times.items()}
    faster = min(med, key=med.get)
    row = {"choice": name, "run_s": times, "median_s": med, "faster": faster, **extra}
    a, b = list(med)
    row["ratio_first_over_second_s"] = med[a] / med[b]
    if steps:
        row["steps_per_s"] = {k: steps / v for k, v in med.items()}
    print(f"{name}: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in med.items())
          + f" -> faster: {faster}", flush=True)  # fmt: skip
    return row


def part_learns(p: Part) -> None:
    import dataclasses

    import jax

    import jaxpg
    from jaxpg.evaluate import make_evaluate

    cfg = jaxpg.Config()
    if p.sizes.learn_timesteps is not None:
        cfg = dataclasses.replace(cfg, total_timesteps=p.sizes.learn_timesteps)
    compiled, trace_s, compile_s = _compile(jaxpg.make_train(cfg), jax.random.key(0))
    key = jax.block_until_ready(jax.random.key(0))
    t = time.perf_counter()
    out = jax.block_until_ready(compiled(key))
    run_s = time.perf_counter() - t
    evaluate = jax.jit(make_evaluate(cfg, num_episodes=128))
    ret = float(evaluate(jax.random.key(1), out.state.params).returns.mean())
    p.emit(
        config="Config()" if p.sizes.learn_timesteps is None else "Config(smoke budget)",
        total_timesteps=cfg.total_timesteps, trace_s=trace_s, compile_s=compile_s,
        run_s=run_s, steps_per_s=cfg.total_timesteps / run_s, final_return=ret,
        learned=ret >= 475, compiled_bytes=_compiled_bytes(compiled),
    )  # fmt: skip
    print(f"Config(): return {ret:.1f} ({'learned' if ret >= 475 else 'NOT learned'}), "
          f"run {run_s:.1f} s, compile {trace_s:.1f} + {compile_s:.1f} s", flush=True)  # fmt: skip


@contextlib.contextmanager
def _pythonpath(value: str):
    """``PYTHONPATH`` for the processes started inside (one per process of the peer)."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def part_ppo_peer(p: Part) -> None:
    import benchmark

    s_args = types.SimpleNamespace(
        num_steps=128, total_timesteps=p.sizes.ppo_total, min_updates=p.sizes.min_updates
    )
    systems = [("jaxpg", sys.executable, os.environ.get("PYTHONPATH", str(ROOT)))]
    if p.args.peer_python:
        systems.append(("rejax", p.args.peer_python, p.args.peer_path or ""))
    else:
        p.emit(peer="skipped: " + (p.args.peer_reason or "no peer"))
    workers = {}
    for label, python, path in systems:
        with _pythonpath(path):
            workers[label] = benchmark.Worker(label, python)
    p.emit(settings_from="scripts/benchmark.py settings_for (weight_init lecun, no annealing)")
    try:
        for i, n in enumerate(p.sizes.envs):
            s = benchmark.settings_for(n, None, s_args)
            row: dict = {"num_envs": n, "settings": s}
            order = list(workers) if i % 2 == 0 else list(workers)[::-1]
            for label in order:
                try:
                    rep = workers[label].ask(cmd="prepare", system=label, settings=s)
                    row[label] = {k: rep[k] for k in ("trace_s", "compile_s", "steps")}
                    row[label]["versions"] = rep.get("versions")
                    row[label]["run_s"] = []
                except Exception as e:  # the peer failing must not stop jaxpg's figures
                    row[label] = {"error": str(e)[-300:]}
            live = [w for w in workers if "error" not in row[w]]
            for r in range(p.sizes.repeats + 1):  # round 0 is a warm-up, not counted
                for label in live if r % 2 == 0 else live[::-1]:
                    t = workers[label].ask(cmd="run", seed=r)["run_s"]
                    if r:
                        row[label]["run_s"].append(t)
                    else:
                        row[label]["warmup_s"] = t
            line = f"ppo num_envs={n:6d}:"
            for label in live:
                d = row[label]
                d.update(workers[label].ask(cmd="memory"))
                d["median_s"] = statistics.median(d["run_s"])
                d["steps_per_s"] = d["steps"] / d["median_s"]
                line += (f" {label} {d['steps_per_s']:>13,.0f} steps/s (compile "
                         f"{d['trace_s']:.1f} + {d['compile_s']:.1f} s)")  # fmt: skip
            if len(live) == 2:
                row["ratio_jaxpg_over_rejax"] = (
                    row["jaxpg"]["steps_per_s"] / row["rejax"]["steps_per_s"]
                )
                line += f" ratio {row['ratio_jaxpg_over_rejax']:.2f}"
            print(line, flush=True)
            p.add_row(row)
            for label in [w for w in workers if "error" in row[w]]:
                workers.pop(label).close()
    finally:
        for w in workers.values():
            w.close()


def part_seeds(p: Part) -> None:
    import jax

    import jaxpg

    # On XLA:CPU a vmap over whole runs batches the orthogonal init's QR, which could
    # deadlock with jaxlib 0.10 (jaxpg/xla_flags.py); the CPU smoke run uses lecun.
    init = "lecun" if jax.default_backend() == "cpu" else "orthogonal"
    num_seeds, total = p.sizes.seeds
    train = jaxpg.make_train(ppo_config(4, total, weight_init=init))
    keys = lambda r: jax.random.split(jax.random.key(r), num_seeds)  # noqa: E731
    compiled, trace_s, compile_s = _compile(jax.vmap(train), keys(0))
    steps = train.num_updates * 4 * 128 * num_seeds
    first_s = _call_s(compiled, keys(1))
    p.emit(seeds=num_seeds, first_call_s=first_s, first_call_steps_per_s=steps / first_s)
    run_s = _call_s(compiled, keys(2))
    p.emit(
        seeds=num_seeds, setting="PureJaxRL CartPole: 4 envs x 128 steps, 4 epochs x 4 "
        "minibatches, lr 2.5e-4 annealed, 64x64 tanh", weight_init=init,
        steps_per_seed=steps // num_seeds, first_call_s=first_s, run_s=run_s,
        steps_per_s=steps / run_s, trace_s=trace_s, compile_s=compile_s,
        compiled_bytes=_compiled_bytes(compiled),
        anchor_steps_per_s=PUREJAXRL_ANCHOR_STEPS_PER_S,
        ratio_to_anchor=steps / run_s / PUREJAXRL_ANCHOR_STEPS_PER_S,
    )  # fmt: skip
    print(f"{num_seeds} seeds x {steps // num_seeds} steps: {steps / run_s:,.0f} steps/s "
          f"({run_s:.1f} s; PureJaxRL's A100 anchor 1e7), compile {compile_s:.1f} s",
          flush=True)  # fmt: skip


def part_variance(p: Part) -> None:
    import jax

    import jaxpg
    from jaxpg.runspec import init_state, make_runspec
    from jaxpg.variance import per_trajectory_gradients

    run = make_runspec(jaxpg.Config())
    params = init_state(run, jax.random.key(0)).params
    for k in p.sizes.trajectories:
        chunk = min(p.sizes.chunk, k)

        def grads(key, prm, k=k, chunk=chunk):
            g = per_trajectory_gradients(
                key, run.env, run.env_params, run.model.policy, prm, k,
                estimator="reward_to_go", max_steps=p.sizes.max_steps, chunk_size=chunk,
            )  # fmt: skip
            return g.mean(0), g.var(0)  # the K x d rows stay on the device

        compiled, trace_s, compile_s = _compile(grads, jax.random.key(0), params)
        run_s = _call_s(compiled, jax.random.key(1), params)
        p.add_row(
            {"trajectories": k, "max_steps": p.sizes.max_steps, "chunk_size": chunk,
             "gradients_per_s": k / run_s, "run_s": run_s, "trace_s": trace_s,
             "compile_s": compile_s, "compiled_bytes": _compiled_bytes(compiled)}
        )  # fmt: skip
        print(f"per-trajectory gradients K={k:>9,}: {k / run_s:>12,.0f} /s ({run_s:.1f} s), "
              f"compile {compile_s:.1f} s", flush=True)  # fmt: skip


def part_sweep(p: Part) -> None:
    import jax
    import numpy as np

    from jaxpg.sweep import sweep

    num_lrs, num_seeds, total = p.sizes.sweep
    init = "lecun" if jax.default_backend() == "cpu" else "orthogonal"
    cfg = ppo_config(4, total, weight_init=init)
    lrs = [float(x) for x in np.geomspace(1e-4, 1e-3, num_lrs)]
    runs = num_lrs * num_seeds
    t = time.perf_counter()
    res = sweep(cfg, seeds=num_seeds, grid={"lr": lrs}, chunk=runs)
    wall = time.perf_counter() - t
    info = res.programs[0]
    steps = runs * int(res.runs[0].env_steps[-1]) if len(res.runs[0].env_steps) else None
    p.emit(
        runs=runs, programs=len(res.programs), chunks=info.num_chunks, chunk=info.chunk,
        steps_per_run=steps // runs if steps else None, wall_s=wall,
        compile_s=info.compile_s, run_s=info.run_s,
        steps_per_s=steps / info.run_s if steps and info.run_s else None,
        compiled_bytes_per_device=info.compiled_bytes_per_device,
        best_lr=min(res.summary, key=lambda row: row.get("rank", 0)).get("lr"),
    )  # fmt: skip
    print(f"sweep: {runs} runs in {info.num_chunks} chunk(s) of one program, compile "
          f"{info.compile_s:.1f} s, run {info.run_s:.1f} s", flush=True)  # fmt: skip


def _cpu_choices() -> tuple[dict, str, str, str]:
    """jaxpg's CPU compiler options and its XLA:CPU import flag, where it keeps them.

    Reads ``jaxpg.compiling.CPU_OPTIONS`` (a dict) or, if the options moved into
    ``XLA_FLAGS``, any upper-case list/str of ``--xla...`` flags in
    ``jaxpg.compiling`` or ``jaxpg.xla_flags`` (or a dict of them); falls back to
    :data:`FALLBACK_CPU_OPTIONS`. Returns ``(options, where, scheduler_flag, where)``.
    """
    from jaxpg import compiling, xla_flags

    flag = getattr(xla_flags, "SCHEDULER_FLAG", None)
    flag_src = "jaxpg.xla_flags.SCHEDULER_FLAG"
    if not isinstance(flag, str):
        flag, flag_src = FALLBACK_SCHEDULER_FLAG, "fallback (gpu_bench.py)"
    opts = getattr(compiling, "CPU_OPTIONS", None)
    if isinstance(opts, dict) and opts:
        return dict(opts), "jaxpg.compiling.CPU_OPTIONS", flag, flag_src
    for mod in (compiling, xla_flags):
        for name in dir(mod):
            val = getattr(mod, name)
            items = val.split() if isinstance(val, str) else val
            if isinstance(items, dict):  # {"--xla_name": value} or {"xla_name": value}
                items = [f"--{str(k).lstrip('-')}={v}" for k, v in items.items()]
            if not name.isupper() or not isinstance(items, (list, tuple)):
                continue
            parsed = {}
            for it in items:
                if isinstance(it, str) and it.startswith("--xla") and "=" in it:
                    k, v = it[2:].split("=", 1)
                    if "--" + k != flag:
                        parsed[k] = int(v) if v.lstrip("-").isdigit() else v
            if parsed:
                return parsed, f"{mod.__name__}.{name} (XLA_FLAGS)", flag, flag_src
    return dict(FALLBACK_CPU_OPTIONS), "fallback (gpu_bench.py)", flag, flag_src


def part_ab_blocking(p: Part) -> None:
    import jax

    import jaxpg
    from jaxpg import blocking

    n = p.sizes.ab_envs
    if p.sizes.smoke:  # small enough to chunk a smoke-sized minibatch
        blocking.CPU_CHUNK, blocking.CHUNK_ABOVE = 128, 256
    cfg = ppo_config(n, n * 128 * p.sizes.ab_total_updates)
    default_rule = blocking.auto_chunks
    minibatch = n * 128 // 4

    def cpu_rule(run, m):  # auto_chunks without its backend test
        return (
            run.config.rollout_mode == "segments"
            and run.mesh is None
            and m > (blocking.CHUNK_ABOVE)
        )

    programs, extra = {}, {"num_envs": n, "minibatch": minibatch, "compile_s": {}}
    for name, rule in (("cache_chunks", cpu_rule), ("none", lambda run, m: False)):
        blocking.auto_chunks = rule
        try:
            train = jaxpg.make_train(cfg)
            if name == "cache_chunks":
                extra["chunk"] = blocking.grad_chunk_size(train.runspec, minibatch)
            compiled, _, c = _compile(train, jax.random.key(0))
        finally:
            blocking.auto_chunks = default_rule
        programs[name], extra["compile_s"][name] = compiled, c
    extra["jaxpg_default_here"] = (
        "cache_chunks" if default_rule(jaxpg.make_train(cfg).runspec, minibatch) else "none"
    )
    times = _alternate(programs, lambda r: (jax.random.key(r),), p.sizes.repeats)
    steps = jaxpg.make_train(cfg).num_updates * n * 128
    p.add_row(_ab_row("blocking.auto_chunks", times, steps, extra))


def part_ab_compiler(p: Part) -> None:
    import jax

    import jaxpg

    opts, where, _, _ = _cpu_choices()
    n = p.sizes.ab_envs // 4 or 1
    cfg = ppo_config(n, n * 128 * max(p.sizes.ab_total_updates, 4))
    train = jaxpg.make_train(cfg)
    programs, extra = {}, {"num_envs": n, "options": opts, "options_from": where,
                           "compile_s": {}}  # fmt: skip
    for name, o in (("cpu_options", opts), ("xla_default", None)):
        try:
            compiled, _, c = _compile(train, jax.random.key(0), compiler_options=o)
        except Exception as e:  # an option this backend's compiler rejects
            extra.setdefault("errors", {})[name] = str(e)[-300:]
            continue
        programs[name], extra["compile_s"][name] = compiled, c
    from jaxpg import compiling

    extra["jaxpg_applies_here"] = getattr(compiling, "compiler_options", lambda: None)()
    if len(programs) == 2:
        times = _alternate(programs, lambda r: (jax.random.key(r),), p.sizes.repeats)
        p.add_row(_ab_row("compiler options", times, train.num_updates * n * 128, extra))
    else:
        p.add_row({"choice": "compiler options", **extra})


def part_ab_shuffle(p: Part) -> None:
    import jax

    import jaxpg
    from jaxpg import shuffle

    for n in p.sizes.perm_sizes:
        programs = {
            "feistel": jax.jit(lambda k, n=n: shuffle.permutation(k, n)),
            "sort": jax.jit(lambda k, n=n: jax.random.permutation(k, n)),
        }
        times = _alternate(programs, lambda r: (jax.random.key(r),), max(p.sizes.repeats, 5))
        p.add_row(_ab_row(f"permutation n={n}", times, None, {"n": n}), "permutation")
    n = p.sizes.ab_envs
    programs, extra = {}, {"num_envs": n, "compile_s": {}}
    for name in ("feistel", "sort"):
        cfg = ppo_config(n, n * 128 * p.sizes.ab_total_updates, minibatch_shuffle=name)
        compiled, _, c = _compile(jaxpg.make_train(cfg), jax.random.key(0))
        programs[name], extra["compile_s"][name] = compiled, c
    times = _alternate(programs, lambda r: (jax.random.key(r),), p.sizes.repeats)
    steps = jaxpg.make_train(cfg).num_updates * n * 128
    p.add_row(_ab_row("minibatch_shuffle (PPO)", times, steps, extra))


def part_probe(p: Part) -> None:
    """One PPO program timed in this process (run by ``ab_xla_flag`` under XLA_FLAGS)."""
    import jax

    import jaxpg

    n = p.sizes.flag_envs
    cfg = ppo_config(n, n * 128 * max(p.sizes.ab_total_updates, 4))
    train = jaxpg.make_train(cfg)
    compiled, _, c = _compile(train, jax.random.key(0))
    times = _alternate({"x": compiled}, lambda r: (jax.random.key(r),), p.sizes.repeats)["x"]
    p.emit(num_envs=n, compile_s=c, run_s=times, xla_flags=os.environ.get("XLA_FLAGS", ""),
           steps_per_s=train.num_updates * n * 128 / statistics.median(times))  # fmt: skip


def part_ab_xla_flag(p: Part) -> None:
    import jax

    from jaxpg import xla_flags

    _, _, flag, flag_src = _cpu_choices()
    applies = getattr(xla_flags, "apply_cpu_workarounds", None)
    would = applies({}, None) if applies else None  # what import jaxpg does with this jaxlib
    extra = {"flag": flag, "flag_from": flag_src, "jaxpg_sets_it_here": would,
             "backend": jax.default_backend(), "runs": {}}  # fmt: skip
    base = " ".join(f for f in os.environ.get("XLA_FLAGS", "").split() if flag not in f)
    for value in ("false", "true"):
        out = Path(p.path).with_suffix(f".{value}.json")
        env = dict(os.environ, XLA_FLAGS=f"{base} {flag}={value}".strip())
        cmd = [sys.executable, __file__, "--part", "probe", "--part-out", str(out)]
        cmd += ["--smoke"] if p.sizes.smoke else []
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0 or not out.exists():
            extra["runs"][value] = {"error": done.stderr[-300:]}
            continue
        extra["runs"][value] = json.loads(out.read_text())
    ok = {k: v["run_s"] for k, v in extra["runs"].items() if "run_s" in v}
    if len(ok) == 2:
        p.add_row(_ab_row(f"{flag}=false vs true", ok, None, extra))
    else:
        p.add_row({"choice": flag, **extra})


PART_FUNCS = {
    "learns": part_learns,
    "ppo_peer": part_ppo_peer,
    "seeds": part_seeds,
    "variance": part_variance,
    "sweep": part_sweep,
    "ab_blocking": part_ab_blocking,
    "ab_compiler": part_ab_compiler,
    "ab_shuffle": part_ab_shuffle,
    "ab_xla_flag": part_ab_xla_flag,
    "probe": part_probe,
}


def run_part_here(args) -> int:
    """``--part NAME``: one part in this process, its results written to ``--part-out``."""
    import warnings

    warnings.filterwarnings("ignore")
    p = Part(Path(args.part_out), Sizes(args.smoke), args)
    PART_FUNCS[args.part](p)
    if "jax" in sys.modules:  # parts that only drive other processes start no backend
        p.emit(peak_bytes_in_use=_peak_bytes())
    return 0


# -- the orchestrator ----------------------------------------------------------------


def _probe_machine(env: dict) -> dict:
    code = (
        "import jax, json, os, platform;"
        "d = jax.devices();"
        "print(json.dumps({'backend': jax.default_backend(), 'devices': [str(x) for x in d],"
        "'device_kind': d[0].device_kind, 'jax': jax.__version__,"
        "'jaxlib': __import__('jaxlib').__version__, 'python': platform.python_version(),"
        "'cpu_count': os.cpu_count(), 'machine': platform.machine()}))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"gpu_bench: jax does not start here:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _launch(name: str, timeout: float, env: dict, args, tmp: Path) -> dict:
    out = tmp / f"{name}.json"
    cmd = [sys.executable, __file__, "--part", name, "--part-out", str(out)]
    cmd += ["--smoke"] if args.smoke else []
    if args.peer_python:
        cmd += ["--peer-python", args.peer_python, "--peer-path", args.peer_path or ""]
    if args.peer_reason:
        cmd += ["--peer-reason", args.peer_reason]
    err = tmp / f"{name}.stderr"
    t = time.perf_counter()
    with open(err, "w") as ef:
        proc = subprocess.Popen(cmd, env=env, stderr=ef, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
            status = "ok" if rc == 0 else f"error (exit {rc})"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the part and its workers
            proc.wait()
            status = f"timeout after {timeout:.0f} s"
    res = json.loads(out.read_text()) if out.exists() else {}
    res["status"], res["wall_s"] = status, time.perf_counter() - t
    if status != "ok":
        res["stderr_tail"] = err.read_text()[-1500:]
        print(f"part {name}: {status}\n{res['stderr_tail'][-600:]}", flush=True)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes: the logic, on a CPU")
    p.add_argument("--out-dir", type=Path, default=None, help="JSON folder (default docs/bench)")
    p.add_argument("--page", type=Path, default=None, help="only remake docs/gpu.md from JSON")
    p.add_argument("--page-out", type=Path, default=ROOT / "docs" / "gpu.md")
    p.add_argument("--wheels", type=Path, default=ROOT / ".gpu" / "wheels")
    p.add_argument("--site", type=Path, default=None, help="--target folders (default: temp)")
    p.add_argument("--parts", default=",".join(n for n, _ in PARTS), help="comma list")
    p.add_argument("--budget", type=float, default=None, help=f"seconds (default {BUDGET_S})")
    p.add_argument("--part-limit", type=float, default=None, help=argparse.SUPPRESS)
    p.add_argument("--peer-python", default=None, help="a Python that runs rejax (optional)")
    p.add_argument("--peer-path", default=None, help=argparse.SUPPRESS)
    p.add_argument("--peer-reason", default=None, help=argparse.SUPPRESS)
    p.add_argument("--part", default=None, help=argparse.SUPPRESS)
    p.add_argument("--part-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.part:
        return run_part_here(args)
    if args.page:
        data = json.loads(args.page.read_text()) if args.page.name != "none" else None
        write_page(data, args.page.name, args.page_out)
        print(f"wrote {args.page_out}")
        return 0
    parts = [x for x in args.parts.split(",") if x]
    unknown = sorted(set(parts) - {n for n, _ in PARTS})
    if unknown:
        p.error(f"--parts: unknown {', '.join(unknown)}; allowed: "
                + ", ".join(n for n, _ in PARTS))  # fmt: skip
    return orchestrate(args, parts)


def orchestrate(args, parts: list[str]) -> int:
    start = time.perf_counter()
    budget = args.budget or (600.0 if args.smoke else BUDGET_S)
    tmp = Path(tempfile.mkdtemp(prefix="gpu_bench_"))
    site = args.site or tmp / "site"
    setup = {name: install(args.wheels / name, site / name) for name in ("jaxpg", "rejax")}
    base_path = os.environ.get("PYTHONPATH", "")
    jax_paths = [str(ROOT)] + ([str(site / "jaxpg")] if setup["jaxpg"]["installed"] else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(jax_paths + [base_path]).strip(os.pathsep))
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # three processes share the GPU
    if not args.peer_python:
        if setup["rejax"]["installed"]:
            args.peer_python = sys.executable
            args.peer_path = os.pathsep.join(filter(None, [str(site / "rejax"), base_path]))
        else:
            args.peer_reason = setup["rejax"].get("error", "rejax wheels not installed")
    ranges = check_ranges(jax_paths)
    advice = _range_advice(ranges)
    for line in advice:
        print("version range: " + line, flush=True)
    machine = _probe_machine(env)
    stamp = datetime.datetime.now(datetime.UTC)
    kind = _kind(machine["device_kind"]) if machine["backend"] != "cpu" else "cpu"
    out_dir = args.out_dir or ROOT / "docs" / "bench"
    out = out_dir / f"gpu-{kind}-{stamp:%Y-%m-%d}{'-smoke' if args.smoke else ''}.json"
    result = {
        "date_utc": stamp.isoformat(timespec="seconds"),
        "smoke": args.smoke,
        "command": "python scripts/gpu_bench.py " + " ".join(sys.argv[1:]),
        "machine": machine,
        "setup": setup,
        "xla_python_client_preallocate": env["XLA_PYTHON_CLIENT_PREALLOCATE"],
        "version_ranges": ranges,
        "widen_after_testing": advice,
        "peer": {
            "python": args.peer_python,
            "pythonpath": args.peer_path,
            "skipped": args.peer_reason,
        },  # fmt: skip
        "budget_s": budget,
        "parts": {},
    }
    result["setup_s"] = time.perf_counter() - start
    print(f"{machine['device_kind']} ({machine['backend']}), jax {machine['jax']}; set-up "
          f"{result['setup_s']:.1f} s; writing {out}", flush=True)  # fmt: skip
    limits = dict(PARTS)
    for name in parts:
        left = budget - (time.perf_counter() - start)
        if left < 8:
            result["parts"][name] = {"status": "skipped: the run's time budget is spent"}
            continue
        limit = min(args.part_limit or (limits[name] if not args.smoke else 300), left)
        result["parts"][name] = _launch(name, limit, env, args, tmp)
        result["total_s"] = time.perf_counter() - start
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str))
    result["total_s"] = time.perf_counter() - start
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    page = args.page_out if not args.smoke else out.with_suffix(".md")
    write_page(result, out.name, page)
    if args.site is None:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"wrote {out} and {page} in {result['total_s']:.0f} s", flush=True)
    learned = result["parts"].get("learns", {}).get("learned", True)
    return 0 if args.smoke or learned else 1


# -- the docs page -------------------------------------------------------------------

PAGE_HEAD = """# Accelerator figures

<!-- Made by scripts/gpu_bench.py from {source}; edit the script, not this page. -->

`scripts/gpu_bench.py` measures jaxpg on the accelerator machine this project can borrow
(one NVIDIA H200; Python 3.12 with jax 0.11.2 and its CUDA 13 plugin, flax, optax, chex,
numpy, matplotlib, seaborn and six; no gymnax, no gymnasium, no package index; at most
64 MiB of working tree and about 15 minutes of device time per session). One command
runs everything in at most 8 minutes, each part in its own process under its own time
limit, and writes `docs/bench/gpu-<device>-<date>.json` after every part and this page
from it.

"""

PAGE_PREPARE = """## Running it

On a connected machine, once (the folder is ignored by git; about 9 MiB):

```bash
python scripts/gpu_wheels.py --reference-python /path/to/py312-venv/bin/python
```

It downloads, for Python 3.12 and Linux x86_64, binary wheels only and with
`--no-deps`: gymnax 1.0.1 with what its `Requires-Dist` needs that the machine lacks
(gymnasium 1.3.0, cloudpickle, farama-notifications) into `.gpu/wheels/jaxpg`, and
rejax 0.1.3 with its own gymnax 0.0.9 and the rest of its closure (distrax, tfp-nightly,
gymnasium 1.4.0, cloudpickle, farama-notifications, decorator, gast, dm-tree, attrs,
wrapt) into `.gpu/wheels/rejax`. The reference Python is a venv holding what the GPU
machine holds (jax 0.11.2, flax, optax, chex, numpy, matplotlib, seaborn and six from
PyPI), so only what is missing there is fetched. All are pure Python except dm-tree
and wrapt (small cp312 manylinux x86_64 wheels; tfp-nightly imports dm-tree).

The device command (the device tool's `run` with `carry: [".gpu/wheels"]`):

```text
{command}
```

Expected: about 5 minutes (an estimate from the number of programs: 34 compilations, a
few seconds each, and 14 process starts; nothing has been timed on the GPU yet), 8 at
most: each part has its own limit and no part starts after 462 s of the 470 s budget.
Give the device tool `timeout_s` 540. Before it, the wheels must be in `.gpu/wheels` of
the working tree (ignored by git, so run `scripts/gpu_wheels.py` in that session).

On the machine the script installs each folder with `pip install --no-index --no-deps
--target` into its own temporary folder; the jaxpg processes get
`PYTHONPATH=<repo>:<jaxpg folder>`, the rejax worker `PYTHONPATH=<rejax folder>` (one
`PYTHONPATH` per process). `XLA_PYTHON_CLIENT_PREALLOCATE=false`, as three processes share
the GPU. `python scripts/gpu_bench.py --smoke --out-dir /tmp/gpu-smoke` runs the same
logic at tiny sizes on a CPU (`tests/test_gpu_bench.py` runs it in CI);
`python scripts/gpu_bench.py --page docs/bench/gpu-h200-DATE.json` remakes this page.

"""

PAGE_AFTER = """## After the run

1. Copy the returned `gpu-h200-DATE.json` into `docs/bench/` and `gpu.md` into `docs/`
   (made on the machine from that JSON; `--page` remakes it here).
2. The CPU-tuned choices: the table gives the faster of each pair on the GPU. A default
   of jaxpg changes only from such a measurement, and the list below says so then.
3. `widen_after_testing` in the JSON names each range of `pyproject.toml` that does not
   admit a version found there: widen it once the test suite passes with that version.

Proven on CPU (2026-12-04, a loaded 2-core machine): `--smoke` ran all nine parts, each
`ok`, in a clean Python 3.12 venv holding only jax 0.11.2 (CPU), flax 0.12.12, optax
0.2.8, chex 0.1.92, numpy 2.5.5, matplotlib 3.11.2, seaborn 0.13.2, six 1.17.0 and their
dependencies, with everything else installed by the script from `.gpu/wheels` into
`--target` folders (rejax 0.1.3 with gymnax 0.0.9 ran as the peer, jaxpg with gymnax
1.0.1); and under Python 3.11 with jax 0.10.2 (no peer wheels: the peer skipped, and
said so).

"""

PAGE_CPU_ONLY = """## CPU-tuned choices on other backends

Each of jaxpg's choices tuned on a CPU, where the code applies it, and what it does on
an accelerator until a GPU measurement says otherwise (the `ab_*` parts time each
against its alternative):

- **Cache-sized gradient chunks** (`jaxpg/blocking.py`, `auto_chunks`): off on GPU/TPU,
  as it tests `jax.default_backend() == "cpu"`; a `Config.grad_chunk` set by hand applies
  on every backend.
- **LLVM level 1** (`jaxpg/compiling.py`, delivered as
  `--xla_backend_optimization_level=1` in `XLA_FLAGS` by `jaxpg.xla_flags.apply_cpu_options`
  at `import jaxpg`): not appended when an accelerator is expected (`JAX_PLATFORMS`, or an
  installed CUDA/TPU plugin), since the flag also sets the LLVM level of GPU programs;
  `compiler_options()` is `None` off CPU. The `ab_compiler_options` part times it on the GPU.
- **`--xla_cpu_enable_concurrency_optimized_scheduler=false`** (`jaxpg/xla_flags.py`, at
  `import jaxpg`): appended to `XLA_FLAGS` on every machine with jaxlib 0.10.x (never with
  0.11), whatever the backend. It is an XLA:CPU flag: it changes the host's CPU client
  only, never a GPU program.
- **Feistel minibatch shuffle** (`jaxpg/shuffle.py`, `Config.minibatch_shuffle="feistel"`,
  the default): **on, on every backend**, so that a seed gives the same minibatches on
  every backend. Its speed advantage over `jax.random.permutation`'s sort was measured on
  CPU only; `minibatch_shuffle="sort"` is the alternative.
- **One run at a time when a sweep initialises** (`jaxpg/sweep.py`, `make_batched_train`,
  `lax.map`): on, on every backend (it avoids a batched-QR deadlock of XLA:CPU);
  initialisation is a negligible part of a run.

"""


def _fmt(x, spec=",.0f") -> str:
    return "—" if x is None else format(x, spec)


def _device_command() -> str:
    return (
        "bash scripts/gpu_bench.sh 2>&1 | tee $OUT/gpu_bench.log; "
        "cp docs/bench/gpu-*.json docs/gpu.md $OUT/"
    )


def write_page(result: dict | None, source: str, page: Path) -> None:
    """Write the docs page from a run's JSON (``None``: no accelerator run yet)."""
    text = PAGE_HEAD.format(source=source)
    gpu = result is not None and result["machine"]["backend"] != "cpu"
    if result is None:
        text += (
            "**No accelerator measurement yet.** The run is prepared and its logic is tested "
            "on CPU (`--smoke`, in CI); no session has had the GPU machine since.\n\n"
        )
    else:
        text += _page_results(result, gpu)
    text += PAGE_PREPARE.format(command=_device_command())
    text += PAGE_AFTER
    text += PAGE_CPU_ONLY
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text)


def _page_results(r: dict, gpu: bool) -> str:
    m = r["machine"]
    parts = r["parts"]
    t = f"## Measured {r['date_utc'][:10]} on {m['device_kind']}\n\n"
    if not gpu:
        t += "**These are CPU figures (a smoke run or no accelerator): not the GPU's.**\n\n"
    t += (f"jax {m['jax']}, jaxlib {m['jaxlib']}, Python {m['python']}; "
          f"{r.get('total_s', 0):.0f} s in all; `{r.get('command', '')}`.\n\n")  # fmt: skip
    bad = [x for x in r.get("version_ranges", []) if x.get("ok") is False]
    if bad:
        t += "Versions outside jaxpg's ranges (the run went on; widen after testing): "
        t += ", ".join(f"{x['name']} {x['found']} (range {x['range']})" for x in bad) + ".\n\n"
    status = ", ".join(f"{k}: {v.get('status')}" for k, v in parts.items())
    t += f"Parts: {status}.\n\n"
    if "learns" in parts and "final_return" in parts["learns"]:
        x = parts["learns"]
        t += (f"**Learns.** `{x['config']}` ({x['total_timesteps']:,} steps): final return "
              f"{x['final_return']:.1f} on 128 episodes ({'≥' if x['learned'] else '<'} 475), "
              f"run {x['run_s']:.1f} s, trace {x['trace_s']:.1f} s + compile "
              f"{x['compile_s']:.1f} s.\n\n")  # fmt: skip
    rows = parts.get("ppo_peer", {}).get("rows", [])
    if rows:
        t += ("**PPO on CartPole-v1, jaxpg and rejax alternating** (matched settings of "
              "`scripts/benchmark.py`: 128 steps, 4 epochs x 4 minibatches, lr 2.5e-4, "
              "lecun init, no annealing; medians of the timed runs).\n\n"
              "| num_envs | jaxpg steps/s | rejax steps/s | jaxpg / rejax | jaxpg compile s "
              "| rejax compile s | jaxpg MiB |\n|---|---|---|---|---|---|---|\n")  # fmt: skip
        for row in sorted(rows, key=lambda x: x["num_envs"]):
            j, q = row.get("jaxpg", {}), row.get("rejax", {})
            mib = j.get("compiled_bytes")
            t += (f"| {row['num_envs']:,} | {_fmt(j.get('steps_per_s'))} | "
                  f"{_fmt(q.get('steps_per_s')) if 'error' not in q else 'error'} | "
                  f"{_fmt(row.get('ratio_jaxpg_over_rejax'), '.2f')} | "
                  f"{_fmt(j.get('compile_s'), '.1f')} | {_fmt(q.get('compile_s'), '.1f')} | "
                  f"{_fmt(mib / 2**20 if mib else None, '.0f')} |\n")  # fmt: skip
        t += "\n"
    if parts.get("ppo_peer", {}).get("peer"):
        t += f"Peer: {parts['ppo_peer']['peer']}.\n\n"
    x = parts.get("seeds", {})
    if "steps_per_s" in x:
        t += (f"**{x['seeds']:,} seeds vmapped** at PureJaxRL's CartPole setting, "
              f"{x['steps_per_seed']:,} steps each: {x['steps_per_s']:,.0f} steps/s "
              f"({x['ratio_to_anchor']:.2f}x PureJaxRL's published ≈ 1e7 steps/s on one "
              f"A100), compile {x['compile_s']:.1f} s.\n\n")  # fmt: skip
    for row in parts.get("variance", {}).get("rows", []):
        t += (f"**Per-trajectory gradients**, K = {row['trajectories']:,} (CartPole, "
              f"reward_to_go, ≤ {row['max_steps']} steps): {row['gradients_per_s']:,.0f} "
              f"gradients/s, compile {row['compile_s']:.1f} s.\n\n")  # fmt: skip
    x = parts.get("sweep", {})
    if "runs" in x:
        t += (f"**Sweep**: {x['runs']} runs in {x['programs']} program(s), {x['chunks']} "
              f"chunk(s); compile {x['compile_s']:.1f} s, run {x['run_s']:.1f} s "
              f"({_fmt(x.get('steps_per_s'))} steps/s).\n\n")  # fmt: skip
    ab = [row for k in ("ab_blocking", "ab_compiler", "ab_shuffle", "ab_xla_flag")
          for key in ("rows", "permutation") for row in parts.get(k, {}).get(key, [])]  # fmt: skip
    if ab:
        t += "**CPU-tuned choices on this backend** (medians, alternating):\n\n"
        t += "| choice | first | second | faster |\n|---|---|---|---|\n"
        for row in ab:
            med = row.get("median_s")
            if not med:
                t += f"| {row['choice']} | — | — | not measured |\n"
                continue
            (a, va), (b, vb) = list(med.items())
            t += f"| {row['choice']} | {a} {va * 1e3:.2f} ms | {b} {vb * 1e3:.2f} ms | "
            t += f"{row['faster']} |\n"
        t += "\n"
    peaks = {k: v.get("peak_bytes_in_use") for k, v in parts.items()}
    if any(peaks.values()):
        t += "Peak device memory per part (allocator's `peak_bytes_in_use`): "
        t += ", ".join(f"{k} {v / 2**20:,.0f} MiB" for k, v in peaks.items() if v) + ".\n\n"
    return t


if __name__ == "__main__":
    sys.exit(main())
