"""Throughput benchmark: jaxpg PPO vs rejax PPO on CartPole-v1, side by side.

jaxpg is timed as the README uses it, ``jax.jit(jaxpg.make_train(config))``: no
private path, and the XLA:CPU options only as ``import jaxpg`` sets them
(:mod:`jaxpg.compiling`). Every worker starts from the caller's ``XLA_FLAGS``, so the
baseline tree and rejax compile as their own users get them.

Both trainers run as persistent worker subprocesses (``scripts/bench_worker.py``),
each compiles its program ``--compile-repeats`` times (compilations alternate too;
the median is reported) and runs it ``--repeats`` times, alternating A B A B ... so
that the noise of a shared machine hits both alike; medians and ratios are reported.
Settings are matched: 64×64 tanh MLPs, same num_envs, num_steps, epochs, minibatches, lr, entropy
coefficient, total steps, and initialisation (jaxpg's ``weight_init="lecun"``, the
flax default rejax uses). After timing, every run's final policy (one per seed)
is evaluated on 128 episodes; the mean ± standard error over seeds shows that
speed is not bought with learning.

The peer runs from its own virtual environment (rejax 0.1.3 unpacks gymnax's old
5-value ``step``; use gymnax 0.0.9 there), given by ``--rejax-python`` or
``$JAXPG_REJAX_PYTHON``; without it the peer is skipped and said so.

Also reported (in-process, jaxpg only): throughput of every estimator (alternated
with ``ppo``'s in the same process: median steps/s and median ratio to ``ppo``), how
throughput and compiled peak memory grow with num_envs and rollout length,
compile time of the default run, and where the time of an update goes.

  python scripts/benchmark.py --quick                   # ~1 minute, what CI runs
  python scripts/benchmark.py --rejax-python ~/rejax-venv/bin/python --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The caller's XLA_FLAGS, before ``import jaxpg`` adds its own: every worker starts from
# these, so each system compiles as its own users get it (jaxpg's import sets jaxpg's
# options in its worker; the baseline and rejax keep theirs).
CALLER_XLA_FLAGS = os.environ.get("XLA_FLAGS")


class Worker:
    """One benchmark subprocess speaking the JSON-lines protocol of bench_worker.py."""

    def __init__(
        self, name: str, python: str, src: Path | None = None, env_overrides: dict | None = None
    ):
        env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
        if CALLER_XLA_FLAGS is not None:
            env["XLA_FLAGS"] = CALLER_XLA_FLAGS
        env.update(env_overrides or {})
        if src is not None:
            env["PYTHONPATH"] = str(src) + os.pathsep + env.get("PYTHONPATH", "")
        self.name = name
        self.proc = subprocess.Popen(
            [python, str(HERE / "bench_worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def ask(self, **msg) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark worker {self.name!r} died (see its stderr above)")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{self.name}: {reply['error']}")
        return reply

    def close(self) -> None:
        try:
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()


def parse_points(text: str) -> list[tuple[int, int]]:
    """``"4,64,4x8"`` → ``[(4, 1), (64, 1), (4, 8)]``: num_envs, optionally × seeds vmapped."""
    points = []
    for item in filter(None, text.split(",")):
        envs, _, seeds = item.partition("x")
        points.append((int(envs), int(seeds or 1)))
    return points


def point_name(num_envs: int, seeds: int) -> str:
    return f"{num_envs}" if seeds == 1 else f"{num_envs} x {seeds} seeds"


def settings_for(num_envs: int, total: int | None, args, seeds: int = 1) -> dict:
    batch = num_envs * args.num_steps
    total = total or max(args.total_timesteps, batch * args.min_updates)
    # weight_init="lecun": rejax's flax-default initialisation, so both learn alike.
    return dict(
        seeds=seeds,
        num_envs=num_envs,
        num_steps=args.num_steps,
        total_timesteps=total,
        num_epochs=4,
        num_minibatches=4,
        lr=2.5e-4,
        ent_coef=0.01,
        anneal_lr=False,
        weight_init="lecun",
    )


def compare(args, systems: list[tuple[str, str, Path | None, str]]) -> list[dict]:
    """Alternate the systems at each num_envs; return one row per setting."""
    rows = []
    for num_envs, seeds in args.num_envs:
        s = settings_for(num_envs, None, args, seeds)
        workers, info = [], {}
        for label, python, src, kind in systems:
            w = Worker(label, python, src)
            rep = w.ask(cmd="prepare", system=kind, settings=s)
            workers.append(w)
            info[label] = {
                "trace_s": rep.get("trace_s", float("nan")),
                "compile_s": rep["compile_s"],
                "trace_cpu_s": rep.get("trace_cpu_s", float("nan")),
                "compile_cpu_s": rep.get("compile_cpu_s", float("nan")),
                "run_cpu_s": [],
                "steps": rep["steps"],
                "versions": rep["versions"],
                "run_s": [],
                "compile_s_all": [rep["compile_s"]],
                "compile_cpu_s_all": [rep.get("compile_cpu_s", float("nan"))],
            }
        # Compile times drift with the machine's load as much as run times do: the
        # same programs are compiled again, alternating, and the medians reported.
        for r in range(1, args.compile_repeats):
            for w in workers if r % 2 == 0 else workers[::-1]:
                rep = w.ask(cmd="recompile")
                info[w.name]["compile_s_all"].append(rep["compile_s"])
                info[w.name]["compile_cpu_s_all"].append(rep["compile_cpu_s"])
        for d in info.values():
            d["compile_s"] = statistics.median(d["compile_s_all"])
            d["compile_cpu_s"] = statistics.median(d["compile_cpu_s_all"])
        for r in range(args.repeats):
            order = workers if r % 2 == 0 else workers[::-1]
            for w in order:
                rep = w.ask(cmd="run", seed=r)
                info[w.name]["run_s"].append(rep["run_s"])
                info[w.name]["run_cpu_s"].append(rep.get("run_cpu_s", float("nan")))
        for w in workers:
            returns = w.ask(cmd="eval", episodes=128)["return"]  # one per run (seed)
            info[w.name]["returns"] = returns
            info[w.name]["return"] = statistics.mean(returns)
            info[w.name]["return_se"] = (
                statistics.stdev(returns) / len(returns) ** 0.5
                if len(returns) > 1
                else float("nan")
            )
            w.close()
        row = {"num_envs": num_envs, "seeds": seeds, "settings": s}
        for label, d in info.items():
            med = statistics.median(d["run_s"])
            med_cpu = statistics.median(d["run_cpu_s"])
            row[label] = {
                **d,
                "median_s": med,
                "steps_per_s": d["steps"] / med,
                "median_cpu_s": med_cpu,
                "steps_per_cpu_s": d["steps"] / med_cpu,
            }
        base = systems[0][0]
        for label, *_ in systems[1:]:
            row[f"ratio_{base}_over_{label}"] = row[base]["steps_per_s"] / row[label]["steps_per_s"]
            row[f"cpu_ratio_{base}_over_{label}"] = (
                row[base]["steps_per_cpu_s"] / row[label]["steps_per_cpu_s"]
            )
        rows.append(row)
        line = f"num_envs={point_name(num_envs, seeds):>12} steps/run={s['total_timesteps']:>9}"
        for label in info:
            line += (
                f" | {label}: {row[label]['steps_per_s']:>9.0f} steps/s "
                f"(trace {row[label]['trace_s']:.1f}s + compile {row[label]['compile_s']:.1f}s "
                f"wall, {row[label]['trace_cpu_s']:.1f}s + {row[label]['compile_cpu_s']:.1f}s "
                "CPU, "
                "return "
                f"{row[label]['return']:.0f}±{row[label]['return_se']:.0f})"
            )
        for k, v in row.items():
            if k.startswith(("ratio_", "cpu_ratio_")):
                line += f" | {k}={v:.2f}"
        for label, *_ in systems[1:]:
            row[f"same_return_{base}_{label}"] = same = same_return(row[base], row[label])
            line += f" | same return as {label}: {'yes' if same else 'NO'}"
        print(line, flush=True)
        if args.json:  # row by row, so a run cut short keeps what it measured
            args.json.write_text(json.dumps({"compare": rows}, indent=2, default=str))
    return rows


def print_table(rows: list[dict], systems: list[str]) -> None:
    """The summary: steps/s ratios (wall-clock, and per CPU second) and trace + compile
    CPU seconds (wall-clock in brackets) of every system."""
    base, others = systems[0], systems[1:]
    head = "| num_envs |" + "".join(f" {base} / {o} steps/s | per CPU second |" for o in others)
    head += "".join(f" {name} trace + compile, CPU s (wall) |" for name in systems)
    print("\n" + head)
    print("| ---: " * (1 + 2 * len(others) + len(systems)) + "|")
    for row in rows:
        line = f"| {point_name(row['num_envs'], row['seeds'])} |"
        for o in others:
            line += (
                f" **{row[f'ratio_{base}_over_{o}']:.2f}×** "
                f"({row[base]['steps_per_s'] / 1e3:.0f}k vs {row[o]['steps_per_s'] / 1e3:.0f}k) |"
                f" {row[f'cpu_ratio_{base}_over_{o}']:.2f}× |"
            )
        for name in systems:
            d = row[name]
            cpu = d["trace_cpu_s"] + d["compile_cpu_s"]
            line += (
                f" {cpu:.1f} ({d['trace_cpu_s']:.1f} + {d['compile_cpu_s']:.1f}; "
                f"wall {d['trace_s'] + d['compile_s']:.1f}) |"
            )
        print(line)
    print(flush=True)


def same_return(a: dict, b: dict) -> bool:
    """Do two systems learn alike? Mean returns over seeds within 3 joint standard
    errors (with a floor of 5% of the larger mean), or both near CartPole's 500."""
    if min(a["return"], b["return"]) >= 475:
        return True
    se = (a["return_se"] ** 2 + b["return_se"] ** 2) ** 0.5
    if se != se:  # one seed only: no error bar, use the floor
        se = 0.0
    return abs(a["return"] - b["return"]) <= max(3 * se, 0.05 * max(a["return"], b["return"]))


# --- in-process jaxpg measurements --------------------------------------------


def _median_time(fn, *a, repeats=3):
    import jax

    jax.block_until_ready(fn(*a))
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*a))
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def estimator_throughput(args) -> list[dict]:
    """Steps/s of each estimator's whole compiled run, side by side with ``ppo``'s.

    Every estimator's run is compiled (and run once) first; then the timed runs
    alternate over the estimators, in reverse order on every other round, so that
    the noise of a shared machine hits all alike. Reported per estimator: the
    median steps/s over ``repeats`` rounds and the median over rounds of its
    steps/s divided by ``ppo``'s in the same round (``ppo`` is always included).
    Complete-episode rollouts simulate every step of the horizon and mask those
    after each episode's end; ``env_steps_per_s`` counts the unmasked ones only.
    """
    import jax

    import jaxpg
    from jaxpg.runspec import make_runspec

    names = args.estimators.split(",") if args.estimators else list(jaxpg.ESTIMATORS)
    if "ppo" not in names:  # the reference of the ratios
        names = ["ppo", *names]
    key = jax.random.key(0)
    programs = {}
    for est in names:  # default: the whole ladder, reinforce … ppo, npg, trpo, rloo, grpo
        cfg = jaxpg.Config(
            estimator=est, num_envs=64, num_steps=128, total_timesteps=64 * 500 * args.min_updates
        )
        agent = make_runspec(cfg)
        steps = agent.num_updates * cfg.num_envs * agent.horizon
        fn = jax.jit(jaxpg.make_train(cfg))
        out = jax.block_until_ready(fn(key))  # compile and warm up
        # Environment steps that are data (complete-episode rollouts simulate the whole
        # horizon but mask the steps after each episode's end). The same key every run.
        valid = float(out.metrics["env_steps"][-1])
        programs[est] = (cfg, steps, fn, valid)
        print(f"estimator {est:13s} compiled", flush=True)
    rates = {est: [] for est in names}
    for r in range(args.repeats):
        for est in names if r % 2 == 0 else names[::-1]:
            _, steps, fn, _ = programs[est]
            t = time.perf_counter()
            jax.block_until_ready(fn(key))
            rates[est].append(steps / (time.perf_counter() - t))
    rows = []
    for est in names:
        cfg, steps, _, valid = programs[est]
        ratios = [a / b for a, b in zip(rates[est], rates["ppo"], strict=True)]
        rate, ratio = statistics.median(rates[est]), statistics.median(ratios)
        rows.append(
            {
                "estimator": est,
                "rollout": cfg.rollout_mode,
                "steps_per_run": steps,
                "steps_per_s": rate,
                "steps_per_s_runs": rates[est],
                "ratio_to_ppo": ratio,
                "env_steps_per_run": valid,
                "env_steps_per_s": rate * valid / steps,
                "env_steps_ratio_to_ppo": ratio * valid / steps,  # ppo: every step is data
            }
        )
        note = (
            f" (every horizon step, masked ones included; unmasked: {rate * valid / steps:.0f}"
            f" steps/s, {ratio * valid / steps:.2f}x ppo)"
            if cfg.rollout_mode == "episodes"
            else ""
        )
        print(
            f"estimator {est:13s} ({cfg.rollout_mode:8s}) {rate:>10.0f} steps/s"
            f" {ratio:6.2f}x ppo{note}",
            flush=True,
        )
    return rows


def scaling(args) -> list[dict]:
    import jax

    import jaxpg
    from jaxpg.runspec import make_runspec

    rows = []
    points = [("num_envs", n, 16) for n in args.scale_envs]
    points += [("num_steps", 64, t) for t in args.scale_steps]
    for axis, n, t in points:
        cfg = jaxpg.Config(
            num_envs=n,
            num_steps=t,
            total_timesteps=n * t * 2,
            num_minibatches=4 if n * t % 4 == 0 else 1,
        )
        agent = make_runspec(cfg)
        fn = jax.jit(jaxpg.make_train(cfg)).lower(jax.random.key(0)).compile()
        mem = fn.memory_analysis()
        peak = None
        if mem is not None:
            peak = mem.temp_size_in_bytes + mem.argument_size_in_bytes + mem.output_size_in_bytes
        dt = _median_time(fn, jax.random.key(0), repeats=max(1, args.repeats - 1))
        steps = agent.num_updates * n * t
        rows.append(
            {
                "axis": axis,
                "num_envs": n,
                "num_steps": t,
                "steps_per_s": steps / dt,
                "peak_bytes": peak,
            }
        )
        print(
            f"scaling {axis:9s} num_envs={n:6d} num_steps={t:4d} {steps / dt:>10.0f} steps/s "
            f"peak {peak / 2**20 if peak else float('nan'):8.1f} MiB",
            flush=True,
        )
    return rows


def compile_time() -> float:
    import jax

    import jaxpg

    t = time.perf_counter()
    jax.jit(jaxpg.make_train(jaxpg.Config())).lower(jax.random.key(0)).compile()
    dt = time.perf_counter() - t
    print(f"compile time of the default Config() run: {dt:.1f} s", flush=True)
    return dt


def profile(args, num_envs: int) -> dict:
    """Split one PPO update into env stepping, policy forward, critic/GAE and epochs."""
    import jax
    import jax.numpy as jnp

    import jaxpg
    from jaxpg import estimators, rollout
    from jaxpg import update as U
    from jaxpg.runspec import init_state, make_runspec

    cfg = jaxpg.Config(
        num_envs=num_envs,
        num_steps=128,
        total_timesteps=num_envs * 128 * 10,
        num_minibatches=4,
        lr=2.5e-4,
        ent_coef=0.01,
    )
    agent = make_runspec(cfg)
    state = init_state(agent, jax.random.key(0))
    n_up = 5

    def repeat(step):
        def run(s):
            return jax.lax.scan(lambda c, _: (step(c), None), s, None, length=n_up)[0]

        return jax.jit(run)

    uniform = lambda p, obs: jnp.zeros(obs.shape[:-1] + (agent.spec.action_dim,))  # noqa: E731

    def env_only(s):
        carry, tr = rollout.rollout_segment(
            s.key, uniform, s.params, agent.env, agent.env_params, agent.spec, s.env, cfg.num_steps
        )
        return s.replace(
            env=carry, key=jax.random.fold_in(s.key, 1), env_steps=s.env_steps + tr.reward.sum()
        )

    def with_policy(s):
        carry, tr = U.collect(agent, s, s.key)
        return s.replace(
            env=carry, key=jax.random.fold_in(s.key, 1), env_steps=s.env_steps + tr.reward.sum()
        )

    def with_gae(s):
        carry, tr = U.collect(agent, s, s.key)
        v, nv = U.critic_values(agent, s.params, tr)
        w = estimators.weights(
            "ppo", tr.reward, v, nv, tr.terminated, tr.truncated, gamma=0.99, lam=0.95
        )
        return s.replace(
            env=carry, key=jax.random.fold_in(s.key, 1), env_steps=s.env_steps + w.psi.sum()
        )

    def full(s):
        return U.update(agent, s, cfg.hparams())[0]

    t = {
        name: _median_time(repeat(f), state, repeats=args.repeats) / n_up
        for name, f in [
            ("env", env_only),
            ("policy", with_policy),
            ("gae", with_gae),
            ("full", full),
        ]
    }
    steps = num_envs * cfg.num_steps
    # FLOPs per env step of the update: 4 epochs × (actor + critic) × (fwd + 2× bwd).
    macs = sum(a * b for a, b in zip((4, 64, 64), (64, 64, 2), strict=True))
    macs += sum(a * b for a, b in zip((4, 64, 64), (64, 64, 1), strict=True))
    flops_update = 4 * 3 * 2 * macs
    share = {
        "env_step": t["env"] / t["full"],
        "policy_forward_and_sampling": (t["policy"] - t["env"]) / t["full"],
        "critic_and_gae": (t["gae"] - t["policy"]) / t["full"],
        "update_epochs": (t["full"] - t["gae"]) / t["full"],
    }
    gflops = flops_update * steps / (t["full"] - t["gae"]) / 1e9
    # The composed kernel bound: the rollout (env step + policy forward) plus
    # epochs × minibatches plain forward/backward passes of both networks, each
    # timed alone at the minibatch shape, with nothing of PPO around them.
    mb = steps // cfg.num_minibatches
    obs = jax.random.normal(jax.random.key(1), (mb, agent.spec.obs_size))

    def fwd_bwd(params):
        def total(p):
            dist, v = agent.model.policy_value(p, obs)
            return dist.sum() + v.sum()

        g = jax.grad(total)(params)
        return jax.tree.map(lambda x, y: x - 1e-9 * y, params, g)

    t_fb = _median_time(repeat(fwd_bwd), state.params, repeats=args.repeats) / n_up
    bound = steps / (t["policy"] + cfg.num_epochs * cfg.num_minibatches * t_fb)
    achieved = steps / t["full"]
    print(
        f"profile num_envs={num_envs}: update {t['full'] * 1e3:.1f} ms = "
        + ", ".join(f"{k} {v:.0%}" for k, v in share.items())
        + f"; epochs run {gflops:.1f} GFLOP/s ({flops_update} FLOPs per env step, "
        f"matmul peak {args.matmul_peak:.0f}); {achieved:.0f} steps/s = "
        f"{achieved / bound:.0%} of the composed kernel bound {bound:.0f}",
        flush=True,
    )
    return {
        "num_envs": num_envs,
        "seconds": t,
        "share": share,
        "update_gflops_per_s": gflops,
        "fwd_bwd_minibatch_s": t_fb,
        "kernel_bound_steps_per_s": bound,
        "steps_per_s": achieved,
        "fraction_of_bound": achieved / bound,
    }


def matmul_peak() -> float:
    """GFLOP/s of a large float32 matmul: what this machine's XLA can reach."""
    import jax
    import jax.numpy as jnp

    n = 2048
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    dt = _median_time(f, a, repeats=5)
    peak = 2 * n**3 / dt / 1e9
    print(f"matmul peak (float32 {n}x{n}): {peak:.0f} GFLOP/s", flush=True)
    return peak


def suite_throughput() -> list[dict]:
    """Each installed suite's simulation steps/s beside jaxpg's PPO training steps/s.

    The rows of ``scripts/bench_suites.py`` (16 envs x 64 steps, 3 repeats; see its
    docstring); suites that are not installed are skipped and said so.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_suites

    print("\n== throughput per environment suite (scripts/bench_suites.py)", flush=True)
    return bench_suites.run(bench_suites.DEFAULT_ENVS, 16, 64, 4, 3)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="small settings (~1 minute): proves the benchmark works, not speed",
    )
    p.add_argument(
        "--rejax-python",
        default=os.environ.get("JAXPG_REJAX_PYTHON"),
        help="python of a venv with rejax and gymnax 0.0.9 (default "
        "$JAXPG_REJAX_PYTHON); without it the peer is skipped",
    )
    p.add_argument(
        "--src",
        type=Path,
        default=ROOT,
        help="the jaxpg source tree measured as 'jaxpg' (default: this checkout)",
    )
    p.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="another jaxpg source tree to compare against (A/B of a change)",
    )
    p.add_argument(
        "--num-envs",
        type=parse_points,
        default=parse_points("4,64,1024,4x8"),
        help="comma list of num_envs; NxS runs N envs x S seeds vmapped in one program",
    )
    p.add_argument("--num-steps", type=int, default=128)
    p.add_argument("--total-timesteps", type=int, default=500_000)
    p.add_argument("--min-updates", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--compile-repeats",
        type=int,
        default=3,
        help="compilations of each compared program, alternating; the median is reported",
    )
    p.add_argument(
        "--estimators", default="", help="comma list for the estimator throughput (default all)"
    )
    p.add_argument(
        "--skip",
        default="",
        help="comma list of: compare,estimators,scaling,compile,profile,suites "
        "(--quick always skips suites)",
    )
    p.add_argument("--json", type=Path, default=None, help="write all results here")
    args = p.parse_args(argv)
    args.scale_envs = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536]
    args.scale_steps = [8, 32, 128, 512]
    if args.quick:
        args.num_envs, args.total_timesteps, args.min_updates = [(4, 1), (64, 1), (4, 2)], 32_768, 2
        args.repeats = 2
        args.compile_repeats = 1
        args.scale_envs, args.scale_steps = [1, 16, 256], [8, 32]
    skip = set(filter(None, args.skip.split(",")))
    if str(ROOT) not in sys.path:  # run from a checkout without installing
        sys.path.insert(0, str(ROOT))

    import jaxpg  # noqa: I001,F401  (first: its XLA:CPU settings must precede JAX's backend)
    import jax  # noqa: I001

    result = {
        "machine": {
            "platform": jax.default_backend(),
            "devices": str(jax.devices()),
            "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0],
        }
    }
    systems = [("jaxpg", sys.executable, args.src.resolve(), "jaxpg")]
    if args.baseline_src:
        systems.append(("baseline", sys.executable, args.baseline_src.resolve(), "jaxpg"))
    if args.rejax_python:
        systems.append(("rejax", args.rejax_python, None, "rejax"))
    else:
        print(
            "rejax peer skipped: pass --rejax-python (a venv with rejax, gymnax 0.0.9)", flush=True
        )
    if "compare" not in skip:
        result["compare"] = compare(args, systems)
        print_table(result["compare"], [label for label, *_ in systems])
    if "estimators" not in skip:
        result["estimators"] = estimator_throughput(args)
    if "scaling" not in skip:
        result["scaling"] = scaling(args)
    if "compile" not in skip:
        result["compile_s"] = compile_time()
    if "profile" not in skip:
        args.matmul_peak = result["matmul_peak_gflops"] = matmul_peak()
        result["profile"] = [profile(args, n) for n, seeds in args.num_envs if seeds == 1]
    if "suites" not in skip and not args.quick:
        result["suites"] = suite_throughput()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
