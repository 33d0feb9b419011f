"""The ladder figure: every estimator's return against env steps on three tasks.

Also the sequence task ``Sequence-v0`` (RL fine-tuning in miniature) with the four
estimators that have presets for it: REINFORCE, PPO, RLOO and GRPO.

Each (task, estimator) cell trains ``--seeds`` seeds in one vmapped program for the
same env-step budget and records every seed's per-update training return
(``metrics["episode_return"]``, the mean return of the episodes that ended in that
update) against the env steps actually taken (``metrics["env_steps"]``: the group
estimators run complete episodes and count only the steps before each ends). Curves
are put on a common grid of env steps (each seed's last value so far) and summarised
by the interquartile mean over seeds with a 95% percentile-bootstrap interval
(``jaxpg.stats``), the statistics rliable recommends for few seeds.

Hyperparameters: a cell uses the preset of its task and estimator where one exists
(``jaxpg.presets``: all of CartPole's, ``acrobot-vpg``, ``acrobot-ppo``,
``pendulum-ppo``); otherwise the task's PPO preset (network, envs, horizon, γ, λ)
with the estimator's own settings taken from its CartPole preset (the fields in which
``cartpole-<estimator>`` differs from ``cartpole-ppo``: learning rate, batch width,
δ, group settings). Those cells are not tuned for their task; the table says which
cells are. Only the budget is changed.

    python scripts/ladder.py                      # all cells; resumes from --out
    python scripts/ladder.py --plot-only          # redraw docs/img/ladder.png

Results are written after every cell (atomically) to ``--out`` (default
``docs/ladder.json``), so an interrupted run loses nothing and a rerun skips the
cells already there; the figure goes to ``--png`` and the table to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import time

import jax
import numpy as np

from jaxpg import estimators, make_train, stats
from jaxpg.files import write_json_atomic
from jaxpg.presets import PRESETS

TASKS = {  # task -> (preset prefix, default budget in env steps, "solved" threshold)
    "CartPole-v1": ("cartpole", 500_000, 475.0),
    "Acrobot-v1": ("acrobot", 500_000, -100.0),
    "Pendulum-v1": ("pendulum", 500_000, -200.0),
    "Sequence-v0": ("sequence", 153_600, 0.7),  # 8 tokens, one terminal reward in [0, 1]
}
# Estimators that run complete episodes (reinforce, reward_to_go, rloo, grpo) spend
# ``total_timesteps`` on whole horizons but take only the steps before each episode
# ends, so they are given this many times the budget and their curves are cut where
# the steps actually taken reach it (a short CartPole episode uses ~20 of 500 steps).
EPISODIC_HEADROOM = {"CartPole-v1": 8, "Acrobot-v1": 3, "Pendulum-v1": 1, "Sequence-v0": 1}
LADDER = ("reinforce", "reward_to_go", "baseline", "vpg", "ppo", "npg", "trpo", "rloo", "grpo")
# The sequence task compares the estimators of RL fine-tuning only (its presets).
TASK_ESTIMATORS = {"Sequence-v0": ("reinforce", "ppo", "rloo", "grpo")}
GRID_POINTS = 50
# Presets that were made from this script's borrowed settings (not tuned for their task).
BORROWED_PRESETS = ("acrobot-trpo", "pendulum-trpo")
# Fields a task's PPO preset keeps when another estimator borrows its CartPole settings.
TASK_FIELDS = ("env", "total_timesteps", "hidden_sizes", "activation", "log_std_init")


def preset_name(prefix: str, estimator: str) -> str:
    """``cartpole`` + ``reward_to_go`` -> ``cartpole-reward-to-go`` (the presets' spelling)."""
    return f"{prefix}-{estimator.replace('_', '-')}"


def cell_config(task: str, estimator: str, budget: int):
    """The Config of one cell and whether it is the task's own tuned preset.

    Args:
      task: a key of :data:`TASKS`.
      estimator: one of ``jaxpg.config.ESTIMATORS``.
      budget: env steps.

    Returns:
      ``(config, tuned)``.
    """
    prefix = TASKS[task][0]
    if estimators.REGISTRY[estimator].episodic:
        budget *= EPISODIC_HEADROOM[task]
    own = PRESETS.get(preset_name(prefix, estimator))
    if own is not None:
        return own.config.replace(total_timesteps=budget), own.name not in BORROWED_PRESETS
    base = PRESETS[preset_name(prefix, "ppo")].config
    ref = PRESETS["cartpole-ppo"].config
    donor = PRESETS[preset_name("cartpole", estimator)].config
    changes = {
        f.name: getattr(donor, f.name)
        for f in dataclasses.fields(donor)
        if f.name not in TASK_FIELDS and getattr(donor, f.name) != getattr(ref, f.name)
    }
    return base.replace(**changes, total_timesteps=budget), False


def run_cell(config, seeds: int) -> dict:
    """Train ``seeds`` seeds of ``config`` in one vmapped program.

    Returns:
      ``{"env_steps": [seeds][U], "episode_return": [seeds][U], "wall_s": ...}``.
    """
    start = time.perf_counter()
    keys = jax.random.split(jax.random.key(config.seed), seeds)
    out = jax.block_until_ready(jax.jit(jax.vmap(make_train(config)))(keys))
    m = jax.device_get(out.metrics)
    returns = np.round(np.asarray(m["episode_return"], np.float64), 3)
    return {
        "env_steps": np.asarray(m["env_steps"], np.int64).tolist(),
        "episode_return": [[x if math.isfinite(x) else None for x in r] for r in returns.tolist()],
        "wall_s": round(time.perf_counter() - start, 1),
    }


def on_grid(steps, returns, grid: np.ndarray) -> np.ndarray:
    """One seed's curve on ``grid``: the last finite return logged at or before each point.

    Args:
      steps: ``[U]`` cumulative env steps after each update.
      returns: ``[U]`` per-update mean episode return (NaN: no episode ended).
      grid: ``[P]`` env-step points.

    Returns:
      ``[P]`` returns (NaN before the first finite one).
    """
    steps = np.asarray(steps, np.float64)
    returns = np.asarray(returns, np.float64)
    ok = np.isfinite(returns)
    steps, returns = steps[ok], returns[ok]
    idx = np.searchsorted(steps, grid, side="right") - 1
    return (
        np.where(idx >= 0, returns[np.clip(idx, 0, None)], np.nan) if steps.size else grid * np.nan
    )


def summarize(cell: dict, budget: int, threshold: float) -> dict:
    """Grid curves, their IQM and bootstrap interval, the final IQM, steps to threshold."""
    grid = np.linspace(budget / GRID_POINTS, budget, GRID_POINTS)
    curves = np.stack(
        [
            on_grid(s, r, grid)
            for s, r in zip(cell["env_steps"], cell["episode_return"], strict=True)
        ]
    )
    iqm = np.array([stats.interquartile_mean(curves[:, i]) for i in range(grid.size)])
    ci = np.array([stats.iqm_bootstrap_ci(curves[:, i], seed=i) for i in range(grid.size)])
    finals = [  # each seed's final return over the updates within the budget
        stats.final_return(np.asarray(r)[np.asarray(s) <= budget])
        for s, r in zip(cell["env_steps"], cell["episode_return"], strict=True)
    ]
    reached = np.flatnonzero(iqm >= threshold)
    return {
        "grid": grid,
        "iqm": iqm,
        "low": ci[:, 0],
        "high": ci[:, 1],
        "final_iqm": stats.interquartile_mean(finals),
        "final_ci": stats.iqm_bootstrap_ci(finals),
        "steps_to_threshold": float(grid[reached[0]]) if reached.size else math.nan,
        "steps_taken": float(np.mean([min(s[-1], budget) for s in cell["env_steps"]])),
    }


def plot(results: dict, png: str) -> None:
    """Draw one panel per task, one IQM curve with its interval per estimator."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in TASKS if t in results["cells"]]
    cols = min(len(tasks), 2)
    rows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 4.4 * rows), squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax in axes.flat[len(tasks) :]:
        ax.set_visible(False)
    for ax, task in zip(axes.flat, tasks, strict=False):
        threshold = TASKS[task][2]
        budget = results["budgets"][task]
        for i, est in enumerate(LADDER):
            cell = results["cells"][task].get(est)
            if cell is None:
                continue
            s = summarize(cell, budget, threshold)
            style = "-" if cell["tuned"] else "--"
            ax.plot(s["grid"], s["iqm"], style, color=colors(i), label=est, lw=1.6)
            ax.fill_between(s["grid"], s["low"], s["high"], color=colors(i), alpha=0.15)
        ax.axhline(threshold, color="0.6", lw=0.8, ls=":")
        ax.set_title(f"{task} ({results['seeds']} seeds, IQM, 95% bootstrap CI)", fontsize=9)
        ax.set_xlabel("tokens" if task == "Sequence-v0" else "env steps")
        ax.set_ylabel("training return")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right", ncol=2)
    fig.suptitle("solid: the task's own preset; dashed: CartPole settings", fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(png) or ".", exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def table(results: dict) -> str:
    """Markdown: final IQM [CI], steps to the threshold, steps taken, wall, tuned?"""
    lines = [
        "| task | estimator | final return, IQM [95% CI] | env steps to IQM ≥ threshold "
        "| tuned preset | wall (all seeds) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for task in [t for t in TASKS if t in results["cells"]]:
        cells = results["cells"][task]
        _, _, threshold = TASKS[task]
        f = ".3f" if abs(threshold) < 10 else ".1f"  # Sequence-v0's returns lie in [0, 1]
        for est in LADDER:
            if est not in cells:
                continue
            cell = cells[est]
            s = summarize(cell, results["budgets"][task], threshold)
            lo, hi = s["final_ci"]
            reach = (
                f"{s['steps_to_threshold']:,.0f}"
                if math.isfinite(s["steps_to_threshold"])
                else f"not in {s['steps_taken']:,.0f}"
            )
            lines.append(
                f"| {task} | `{est}` | {s['final_iqm']:{f}} [{lo:{f}}, {hi:{f}}] "
                f"| {reach} (≥ {threshold:g}) | {'yes' if cell['tuned'] else 'no'} "
                f"| {cell['wall_s']:.0f} s |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--estimators", nargs="*", default=list(LADDER), choices=LADDER)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, help="one budget for every task (default: TASKS)")
    parser.add_argument("--out", default="docs/ladder.json")
    parser.add_argument("--png", default="docs/img/ladder.png")
    parser.add_argument("--plot-only", action="store_true", help="redraw from --out")
    args = parser.parse_args(argv)
    results = {"seeds": args.seeds, "budgets": {}, "cells": {}}
    if os.path.exists(args.out):
        with open(args.out) as fh:
            results = json.load(fh)
        if results["seeds"] != args.seeds and not args.plot_only:
            parser.error(f"--seeds={args.seeds} but {args.out} holds {results['seeds']} seeds")
    if not args.plot_only:
        results["date"] = time.strftime("%Y-%m-%d")
        results["jax"] = jax.__version__
        for task in args.tasks:
            budget = args.steps or TASKS[task][1]
            if results["budgets"].setdefault(task, budget) != budget:
                parser.error(f"{args.out} holds {task} at {results['budgets'][task]} steps")
            cells = results["cells"].setdefault(task, {})
            for est in args.estimators:
                if est in cells or est not in TASK_ESTIMATORS.get(task, LADDER):
                    continue
                config, tuned = cell_config(task, est, budget)
                cell = run_cell(config, args.seeds)
                cells[est] = {**cell, "tuned": tuned, "config": dataclasses.asdict(config)}
                write_json_atomic(args.out, results)
                print(f"{task} {est}: {cell['wall_s']:.0f} s", flush=True)
    plot(results, args.png)
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
