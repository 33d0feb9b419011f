"""Reproduce the documented result of each preset: train over seeds (vmapped), evaluate.

Each preset trains ``--seeds`` runs in one compiled program (``jax.vmap`` over
keys), then evaluates every final policy on ``--episodes`` fresh episodes with
sampled actions. The table reports the mean ± std over seeds of each seed's
mean evaluation return, plus the last training return, and the wall time here
(compile included).

Usage::

    PYTHONPATH=. python scripts/reproduce_presets.py acrobot-ppo pendulum-ppo \
        --seeds 5 --out docs/presets.json
    PYTHONPATH=. python scripts/reproduce_presets.py acrobot-ppo --set lr=1e-3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import jax
import numpy as np

from jaxpg.commands.common import CommandError, parse_field_text
from jaxpg.config import Config
from jaxpg.evaluate import make_evaluate
from jaxpg.presets import PRESETS, get_preset
from jaxpg.train import make_train


def _parse_set(items: list[str], config: Config) -> Config:
    """Apply ``field=value`` overrides, each read as the CLI reads a value of that field."""
    changes = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise CommandError(f"--set {item!r}: expected FIELD=VALUE")
        changes[name.strip()] = parse_field_text(name.strip(), text.strip(), f"--set {item}")
    try:
        return config.replace(**changes)
    except ValueError as exc:
        raise CommandError(f"--set: {exc}") from None


def reproduce(config: Config, seeds: int, episodes: int, group: int | None = None) -> dict:
    """Train ``seeds`` runs of ``config`` (vmapped) and evaluate each final policy.

    Args:
      config: the run configuration.
      seeds: number of seeds.
      episodes: evaluation episodes per seed.
      group: seeds per compiled program (``jax.vmap`` over this many keys);
        ``None`` trains all seeds in one program.

    Returns:
      A dict with per-seed eval and final training returns, env steps and wall time.
    """
    start = time.perf_counter()
    keys = jax.random.split(jax.random.key(config.seed), seeds)
    group = seeds if group is None else group
    train = jax.jit(jax.vmap(make_train(config)))
    outs = [jax.block_until_ready(train(keys[i : i + group])) for i in range(0, seeds, group)]
    out = jax.tree.map(
        lambda *xs: np.concatenate(
            [
                np.asarray(x) if x.dtype != keys.dtype else np.asarray(jax.random.key_data(x))
                for x in xs
            ]
        ),
        *outs,
    )
    train_s = time.perf_counter() - start
    evaluate = jax.jit(jax.vmap(make_evaluate(config, episodes)))
    keys = jax.random.split(jax.random.key(10_000 + config.seed), seeds)
    ev = evaluate(keys, out.state.params, out.state.obs_norm)
    eval_ret = np.asarray(ev.returns).mean(axis=1)
    curve = np.asarray(out.metrics["episode_return"])  # [seeds, updates]
    tail = max(1, curve.shape[1] // 20)
    final_train = np.nanmean(curve[:, -tail:], axis=1)
    return {
        "env": config.env,
        "estimator": config.estimator,
        "env_steps": int(np.asarray(out.state.env_steps)[0]),
        "seeds": seeds,
        "seeds_per_program": group,
        "eval_episodes": episodes,
        "eval_return_per_seed": eval_ret.round(2).tolist(),
        "eval_return_mean": float(eval_ret.mean()),
        "eval_return_std": float(eval_ret.std()),
        "train_return_final_mean": float(final_train.mean()),
        "train_return_final_std": float(final_train.std()),
        "wall_s": time.perf_counter() - start,
        "train_wall_s": train_s,
    }


def table(rows: dict[str, dict]) -> str:
    """A Markdown table of results."""
    lines = [
        "| preset | env | estimator | env steps | eval return (mean ± std over seeds) "
        "| final train return | seeds | wall time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in rows.items():
        lines.append(
            f"| `{name}` | {r['env']} | {r['estimator']} | {r['env_steps']:,} "
            f"| {r['eval_return_mean']:.1f} ± {r['eval_return_std']:.1f} "
            f"| {r['train_return_final_mean']:.1f} ± {r['train_return_final_std']:.1f} "
            f"| {r['seeds']} | {r['wall_s']:.0f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="*", help=f"names (default all): {', '.join(PRESETS)}")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per preset (default 5)")
    parser.add_argument(
        "--episodes", type=int, default=32, help="evaluation episodes per seed (default 32)"
    )
    parser.add_argument(
        "--group", type=int, default=None, help="seeds per vmapped program (default: all in one)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a Config field (for tuning)",
    )
    parser.add_argument("--out", help="also write the results as JSON here")
    parser.add_argument("--markdown", help="also write the Markdown table here")
    args = parser.parse_args(argv)
    rows = {}
    configs = {}
    for name in args.presets or list(PRESETS):  # every input checked before any training
        try:
            configs[name] = _parse_set(args.set, get_preset(name).config)
        except (CommandError, ValueError) as exc:
            print(f"reproduce_presets: error: {exc}", file=sys.stderr)
            return 2
    for name, config in configs.items():
        rows[name] = reproduce(config, args.seeds, args.episodes, args.group)
        rows[name]["config"] = dataclasses.asdict(config)
        r = rows[name]
        print(
            f"{name}: eval {r['eval_return_mean']:.1f} ± {r['eval_return_std']:.1f} "
            f"per seed {r['eval_return_per_seed']} in {r['wall_s']:.0f} s",
            flush=True,
        )
    print(table(rows))
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(table(rows) + "\n")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
