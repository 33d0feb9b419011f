"""``jaxpg eval``: evaluate a trained policy on fresh episodes (vmapped, one program).

Examples::

    jaxpg eval runs/cartpole                     # newest checkpoint of a run
    jaxpg eval runs/cartpole/checkpoints/ckpt_00000100.msgpack --episodes 256 --greedy
    jaxpg eval runs/breakout --gif breakout.gif --json
    jaxpg eval runs/doorkey --gif doorkey.gif    # a navix/ run, drawn by Navix
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from jaxpg.commands.common import CommandError, check_memory, emit_json

ORDER = 40


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a run directory or checkpoint",
        description="Mean and std of the undiscounted return over N complete episodes, "
        "run in parallel (jax.vmap) in one compiled program.",
    )
    p.add_argument(
        "path",
        metavar="RUN_DIR_OR_CHECKPOINT",
        help="a run directory (its newest checkpoint) or a ckpt_*.msgpack file",
    )
    p.add_argument(
        "--episodes", type=int, default=64, help="episodes to run (vmapped) (default: 64)"
    )
    p.add_argument(
        "--greedy",
        action="store_true",
        help="take the most likely action (the mean for Gaussian policies) instead of sampling",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the evaluation episodes (default: 0)"
    )
    p.add_argument(
        "--gif",
        metavar="FILE",
        help="also render one episode to FILE (gymnax's visualizer for gymnax ids; the "
        "suite's own renderer for navix/, craftax/, jumanji/ and brax/ ids)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import jax
    import numpy as np

    from jaxpg import checkpoint
    from jaxpg import run as runlib
    from jaxpg.evaluate import make_evaluate

    if args.episodes < 1:
        raise CommandError(f"--episodes={args.episodes} must be >= 1")
    if not -(2**63) <= args.seed < 2**63:
        raise CommandError(f"--seed={args.seed} must fit in a signed 64-bit integer")
    if args.gif:
        gif = Path(args.gif)
        if gif.suffix.lower() != ".gif":
            raise CommandError(f"--gif {gif}: the file name must end in .gif")
        if not gif.parent.exists():
            raise CommandError(f"--gif {gif}: directory {gif.parent} does not exist")
        if gif.is_dir():
            raise CommandError(f"--gif {gif} is a directory; give a file name ending in .gif")
        if not os.access(gif.parent, os.W_OK) or (gif.exists() and not os.access(gif, os.W_OK)):
            raise CommandError(f"--gif {gif}: not writable (check the permissions of {gif.parent})")
        from jaxpg.render import check_supported

        try:  # the renderer's packages, before any checkpoint is restored
            check_supported(runlib.peek_config(Path(args.path)).env)
        except runlib.RunError as exc:
            raise CommandError(str(exc)) from None
    try:
        config, params, step, obs_norm = runlib.load_policy(Path(args.path))
    except (checkpoint.IncompatibleCheckpointError, runlib.RunError) as exc:
        raise CommandError(str(exc)) from None
    _check_eval_memory(config, args.episodes)
    evaluate = jax.jit(make_evaluate(config, args.episodes, args.greedy))
    res = evaluate(jax.random.key(args.seed), params, obs_norm)
    ret = np.asarray(res.returns, np.float64)
    length = np.asarray(res.lengths, np.float64)
    out = {
        "path": str(args.path),
        "env": config.env,
        "estimator": config.estimator,
        "update": step,
        "episodes": args.episodes,
        "greedy": bool(args.greedy),
        "seed": args.seed,
        "return_mean": float(ret.mean()),
        "return_std": float(ret.std()),
        "return_min": float(ret.min()),
        "return_max": float(ret.max()),
        "length_mean": float(length.mean()),
    }
    if args.gif:
        from jaxpg.render import render_gif

        out["gif"] = str(
            render_gif(config, params, Path(args.gif), args.seed, args.greedy, obs_norm)
        )
    if args.json:
        emit_json(out)
    else:
        print(
            f"{config.env} ({config.estimator}, update {step}): return "
            f"{out['return_mean']:.2f} ± {out['return_std']:.2f} (std) over "
            f"{args.episodes} {'greedy' if args.greedy else 'sampled'} episodes, "
            f"mean length {out['length_mean']:.1f}" + (f"; gif {out['gif']}" if args.gif else "")
        )
    return 0


def _check_eval_memory(config, episodes: int) -> None:
    """Refuse ``--episodes`` far beyond memory, with train's analytic estimate.

    The evaluation steps ``episodes`` envs at once, which costs about what one
    rollout step of a run with ``num_envs=episodes`` does (that run's estimate is
    an upper bound: it also counts the update's buffers).
    """
    try:
        probe = config.replace(
            num_envs=episodes, num_steps=1, num_minibatches=1, total_timesteps=episodes
        )
    except ValueError:  # a config this probe cannot express: no estimate, no check
        return
    check_memory(probe, what=f"--episodes {episodes}", advice="use fewer --episodes")
