"""``jaxpg variance``: bias and variance of every estimator on frozen CartPole policies.

``--parts`` selects what is measured at each checkpoint (the estimator table,
the Tucker-style decomposition, R4's 1/N law, E5b's PPO step, the GAE (γ, λ)
map); ``--scale`` picks the CPU-sized or the accelerator-sized defaults of
every size option, and an explicit option overrides either.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ORDER = 30

# Sizes for one accelerator (a 2^16-trajectory test pool, a 2^18 reference, R4 up
# to N = 4096 with 32 disjoint batches); the CPU scale is ExperimentConfig's defaults.
ACCELERATOR = {
    "num_seeds": 3,
    "pool_size": 65536,
    "ref_size": 262144,
    "chunk_size": 4096,
    "vstar_size": 16384,
    "batch_baseline_sizes": (2, 8, 64, 512),
    "decomp_states": 16384,
    "law_pool": 131072,
    "law_max_batches": 1024,
    "law_chunk": 4096,
    "ppo_sizes": (8, 32, 128, 512, 2048),
    "ppo_seeds": 16,
    "gae_gammas": (0.9, 0.95, 0.98, 0.99, 0.995, 1.0),
    "gae_lambdas": (0.0, 0.5, 0.8, 0.9, 0.95, 0.97, 0.99, 1.0),
}
SIZE_FIELDS = (
    "num_seeds",
    "pool_size",
    "ref_size",
    "max_batches",
    "chunk_size",
    "vstar_size",
    "vstar_steps",
    "batch_baseline_sizes",
    "lambdas",
    "resamples",
    "decomp_states",
    "law_pool",
    "law_batch_sizes",
    "law_max_batches",
    "law_chunk",
    "ppo_sizes",
    "ppo_seeds",
    "gae_gammas",
    "gae_lambdas",
    "gae_pairs",
)


def _parts(text: str) -> tuple[str, ...]:
    from jaxpg.variance.experiment import PARTS

    if text.strip() == "all":
        return PARTS
    parts = tuple(x.strip() for x in text.split(",") if x.strip())
    bad = [x for x in parts if x not in PARTS]
    if bad or not parts:
        raise argparse.ArgumentTypeError(
            f"unknown part(s) {', '.join(bad) or '(none)'}; allowed: all, {', '.join(PARTS)}"
        )
    return parts


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
        default=None,
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
        default=None,
        metavar="K",
        help=f"test trajectories per checkpoint (default: {d.pool_size})",
    )
    p.add_argument(
        "--ref-size",
        type=int,
        default=None,
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
        default=None,
        metavar="M",
        help=f"disjoint batches per N (default: {d.max_batches})",
    )
    p.add_argument(
        "--lambdas",
        type=_floats,
        default=None,
        metavar="L,L",
        help=f"GAE λ values with γ = 1 (default: {d.lambdas})",
    )
    p.add_argument(
        "--batch-baseline-sizes",
        type=_ints,
        default=None,
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
        default=None,
        help=f"bootstrap resamples (default: {d.resamples})",
    )
    p.add_argument(
        "--vstar-size",
        type=int,
        default=None,
        metavar="K",
        help="fresh trajectories that the time-aware critic V*(s, t) is fit on "
        f"(default: {d.vstar_size})",
    )
    p.add_argument(
        "--vstar-steps",
        type=int,
        default=None,
        help=f"Adam steps of the V* fit (default: {d.vstar_steps})",
    )
    p.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        help=f"trajectories per vmapped chunk (default: {d.chunk_size})",
    )
    p.add_argument(
        "--gamma",
        type=float,
        default=d.gamma,
        help="discount of the PPO training run, its critic and the PPO-style GAE(γ, 0.95) "
        f"estimator (default: {d.gamma}; the T1 estimators use γ = 1)",
    )
    p.add_argument(
        "--parts",
        type=_parts,
        default=d.parts,
        metavar="P,P",
        help="what to measure: all, or a comma list of " + ", ".join(d.parts) + " (default: all)",
    )
    p.add_argument(
        "--scale",
        choices=("cpu", "accelerator"),
        default="cpu",
        help="default sizes: cpu (minutes on 2 cores) or accelerator (one GPU); explicit "
        "size options override them (default: cpu)",
    )
    p.add_argument(
        "--decomp-states",
        type=int,
        default=None,
        metavar="K",
        help=f"visited pairs of the Tucker-style decomposition (cpu: {d.decomp_states})",
    )
    p.add_argument(
        "--law-pool",
        type=int,
        default=None,
        metavar="K",
        help=f"trajectories of the streamed R4 pool (cpu: {d.law_pool})",
    )
    p.add_argument(
        "--law-batch-sizes",
        type=_ints,
        default=None,
        metavar="N,N",
        help="R4 batch sizes, powers of two (default: 4 ... law-pool/32)",
    )
    p.add_argument(
        "--law-max-batches",
        type=int,
        default=None,
        metavar="M",
        help=f"disjoint batch means kept per N for R4 (cpu: {d.law_max_batches})",
    )
    p.add_argument(
        "--law-chunk",
        type=int,
        default=None,
        help=f"trajectories per streamed R4 chunk, a power of two (cpu: {d.law_chunk})",
    )
    p.add_argument(
        "--ppo-sizes",
        type=_ints,
        default=None,
        metavar="N,N",
        help=f"E5b rollout sizes in complete episodes, even (cpu: {d.ppo_sizes})",
    )
    p.add_argument(
        "--ppo-seeds",
        type=int,
        default=None,
        help=f"E5b rollouts per size (cpu: {d.ppo_seeds})",
    )
    p.add_argument(
        "--gae-gammas",
        type=_floats,
        default=None,
        metavar="G,G",
        help=f"γ values of the GAE map (cpu: {d.gae_gammas})",
    )
    p.add_argument(
        "--gae-lambdas",
        type=_floats,
        default=None,
        metavar="L,L",
        help=f"λ values of the GAE map (cpu: {d.gae_lambdas})",
    )
    p.add_argument(
        "--gae-pairs",
        type=int,
        default=None,
        help=f"state-action pairs per batch for the GAE map's MSE (default: {d.gae_pairs})",
    )
    p.set_defaults(func=run)


def experiment_config(args: argparse.Namespace):
    """ExperimentConfig from parsed options: explicit > --scale preset > defaults."""
    from jaxpg.variance import experiment

    sizes = dict(ACCELERATOR) if args.scale == "accelerator" else {}
    for field in SIZE_FIELDS:
        value = getattr(args, field, None)
        if value is not None:
            sizes[field] = value
    return experiment.ExperimentConfig(
        seed=args.seed,
        targets=args.targets,
        batch_sizes=args.batch_sizes,
        train_timesteps=args.train_timesteps,
        gamma=args.gamma,
        parts=args.parts,
        **sizes,
    )


def _as_flags(message: str) -> str:
    """An ``ExperimentConfig`` message as the command line spells it: ``--train-timesteps=10``."""
    import re

    from jaxpg.variance import experiment

    names = "|".join(f.name for f in dataclasses.fields(experiment.ExperimentConfig))
    return re.sub(
        rf"(?<![\w.-])({names})(?=[= ,])", lambda m: "--" + m.group(1).replace("_", "-"), message
    )


def run(args: argparse.Namespace) -> int:
    from jaxpg.commands.common import CommandError, emit_json, write_json_atomic
    from jaxpg.variance import experiment, report

    try:
        cfg = experiment_config(args)
    except ValueError as exc:
        raise CommandError(_as_flags(str(exc))) from None
    from jaxpg import files, rundir

    out = Path(args.out)
    try:  # checked, not created: a refused experiment leaves no --out behind
        files.check_writable_dir(out, "--out")
        rundir.check_kind(out, "variance", "--out")
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    log = lambda msg: print(f"jaxpg variance: {msg}", file=sys.stderr)  # noqa: E731
    rows, summary = experiment.run(cfg, log=log)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"--out {out}: {files.describe(exc)}") from exc
    record = {"experiment": dataclasses.asdict(cfg)}
    write_json_atomic(out / "config.json", {**rundir.identity("variance", record), **record})
    has_table = any("estimators" in c for c in summary["checkpoints"])
    write_json_atomic(out / "summary.json", summary)
    (out / "variance.csv").write_text(report.csv_text(report.merge_rows(rows, summary)))
    (out / "table.md").write_text(report.full_markdown(summary, rows))
    if not args.no_plots:
        figs = report.figures(rows, summary) if has_table else {}
        figs |= report.part_figures(rows, summary)
        for stem, fig in figs.items():
            fig.savefig(out / f"{stem}.png", dpi=72)
    if args.json:
        emit_json(summary)
    else:
        if has_table:
            print(report.markdown_table(summary, names=report.MAIN[:4]), end="")
        print(
            f"wrote {out}/variance.csv, summary.json, table.md"
            + ("" if args.no_plots else " and plots")
        )
    return 0
