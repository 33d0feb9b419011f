"""``jaxpg variance``: bias and variance of every estimator on frozen CartPole policies."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ORDER = 30


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected integers such as 2,8,32, got {text!r}") from exc


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers such as 0,0.5, got {text!r}") from exc


def register(subparsers) -> None:
    from jaxpg.variance.experiment import ExperimentConfig

    d = ExperimentConfig()
    p = subparsers.add_parser(
        "variance",
        help="measure bias/variance of policy-gradient estimators on CartPole",
        description="Train PPO on CartPole-v1, freeze policies at random init and at target "
        "returns, draw pools of complete episodes (plus a disjoint reference pool) and "
        "report, for every estimator on the same trajectories and every batch size N: "
        "tr Σ, noise scale B, bias ± SE, pairwise cosine and cosine to the reference. "
        "Writes variance.csv, summary.json, table.md and PNG plots to --out.",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("runs/variance"),
        help="output directory (default: runs/variance)",
    )
    p.add_argument("--json", action="store_true", help="print summary.json on stdout")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--num-seeds",
        type=int,
        default=d.num_seeds,
        help="training seeds seed, seed+1, ... each with its own checkpoints "
        f"(default: {d.num_seeds})",
    )
    p.add_argument(
        "--targets",
        type=_floats,
        default=d.targets,
        metavar="R,R",
        help=f"training returns to freeze at, after init (default: {d.targets})",
    )
    p.add_argument(
        "--pool-size",
        type=int,
        default=d.pool_size,
        metavar="K",
        help=f"test trajectories per checkpoint (default: {d.pool_size})",
    )
    p.add_argument(
        "--ref-size",
        type=int,
        default=d.ref_size,
        metavar="K",
        help=f"reference trajectories per checkpoint (default: {d.ref_size})",
    )
    p.add_argument(
        "--batch-sizes",
        type=_ints,
        default=None,
        metavar="N,N",
        help="batch sizes (default: 1, 2, 4, ... up to pool-size/2)",
    )
    p.add_argument(
        "--max-batches",
        type=int,
        default=d.max_batches,
        metavar="M",
        help=f"disjoint batches per N (default: {d.max_batches})",
    )
    p.add_argument(
        "--lambdas",
        type=_floats,
        default=d.lambdas,
        metavar="L,L",
        help=f"GAE λ values with γ = 1 (default: {d.lambdas})",
    )
    p.add_argument(
        "--batch-baseline-sizes",
        type=_ints,
        default=d.batch_baseline_sizes,
        metavar="N,N",
        help=f"N for the same-batch baselines (default: {d.batch_baseline_sizes})",
    )
    p.add_argument(
        "--train-timesteps",
        type=int,
        default=d.train_timesteps,
        help=f"PPO step budget (default: {d.train_timesteps})",
    )
    p.add_argument(
        "--resamples",
        type=int,
        default=d.resamples,
        help=f"bootstrap resamples (default: {d.resamples})",
    )
    p.add_argument(
        "--vstar-size",
        type=int,
        default=d.vstar_size,
        metavar="K",
        help="fresh trajectories that the time-aware critic V*(s, t) is fit on "
        f"(default: {d.vstar_size})",
    )
    p.add_argument(
        "--vstar-steps",
        type=int,
        default=d.vstar_steps,
        help=f"Adam steps of the V* fit (default: {d.vstar_steps})",
    )
    p.add_argument(
        "--chunk-size",
        type=int,
        default=d.chunk_size,
        help=f"trajectories per vmapped chunk (default: {d.chunk_size})",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jaxpg.commands.common import CommandError, emit_json, write_json_atomic
    from jaxpg.variance import experiment, report

    try:
        cfg = experiment.ExperimentConfig(
            seed=args.seed,
            num_seeds=args.num_seeds,
            targets=args.targets,
            pool_size=args.pool_size,
            ref_size=args.ref_size,
            batch_sizes=args.batch_sizes,
            max_batches=args.max_batches,
            lambdas=args.lambdas,
            batch_baseline_sizes=args.batch_baseline_sizes,
            train_timesteps=args.train_timesteps,
            resamples=args.resamples,
            chunk_size=args.chunk_size,
            vstar_size=args.vstar_size,
            vstar_steps=args.vstar_steps,
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"--out {out}: {exc.strerror}") from exc
    log = lambda msg: print(f"jaxpg variance: {msg}", file=sys.stderr)  # noqa: E731
    rows, summary = experiment.run(cfg, log=log)
    (out / "variance.csv").write_text(report.csv_text(report.merge_rows(rows, summary)))
    write_json_atomic(out / "summary.json", summary)
    (out / "table.md").write_text(report.markdown_table(summary))
    if not args.no_plots:
        for stem, fig in report.figures(rows, summary).items():
            fig.savefig(out / f"{stem}.png", dpi=72)
    if args.json:
        emit_json(summary)
    else:
        print(report.markdown_table(summary, names=report.MAIN[:4]), end="")
        print(
            f"wrote {out}/variance.csv, summary.json, table.md"
            + ("" if args.no_plots else " and plots")
        )
    return 0
