"""``jaxpg train``: train one run into a run directory (or continue one).

Examples::

    jaxpg train                                  # PPO on CartPole-v1, runs/<env>-<est>-<time>
    jaxpg train --preset acrobot-ppo --out runs/acro
    jaxpg train --config my.toml --lr 1e-3 --json
    jaxpg train --config runs/acro/config.json   # the same run again
    jaxpg train --preset acrobot-ppo --print-config > acro.json
    jaxpg train --resume runs/acro               # continue from the newest checkpoint
    jaxpg train --devices all --num-envs 4096    # the env batch split over every device
    jaxpg train --wandb --wandb-project cartpole # also log to Weights & Biases
"""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path

from jaxpg import files
from jaxpg.commands.common import (
    CommandError,
    add_config_options,
    add_distributed_options,
    add_wandb_options,
    check_memory,
    config_overrides,
    emit_json,
    print_config,
    resolve_config,
    wandb_options,
)
from jaxpg.lock import RunLock

ORDER = 10


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a policy into a run directory",
        description="Train one run. Config layers: defaults < --preset < --config FILE < "
        "options. The run is compiled (a scan of updates per chunk); progress and "
        "metrics are streamed from inside it.",
    )
    p.add_argument(
        "--preset", metavar="NAME", help="start from a documented preset (see `jaxpg presets`)"
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="TOML, YAML or JSON file of Config fields, applied over the preset; a run's "
        "RUN_DIR/config.json reproduces that run",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config as JSON (a file --config reads) and exit",
    )
    p.add_argument(
        "--out", metavar="DIR", help="run directory (default: runs/<env>-<estimator>-<UTC time>)"
    )
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue RUN_DIR from its newest checkpoint with its saved config",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="UPDATES",
        help="updates between checkpoints, each taken at the first chunk "
        "boundary at or after a multiple of UPDATES (default: 100; with --resume, "
        "the run's own)",
    )
    p.add_argument(
        "--log-every",
        type=int,
        default=None,
        metavar="UPDATES",
        help="updates per compiled chunk whose metric rows are then streamed "
        "to metrics.csv and the progress bar (default: 50; with --resume, the run's)",
    )
    p.add_argument(
        "--log-mode",
        choices=("chunks", "callback"),
        default=None,
        help="chunks: rows are read between short compiled chunks "
        "(cheapest); callback: rows leave the program by jax.debug.callback "
        "(default: chunks)",
    )
    p.add_argument(
        "--keep-checkpoints",
        type=int,
        default=3,
        metavar="N",
        help="how many of the newest checkpoints to keep (default: 3)",
    )
    p.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write TensorBoard event files to RUN_DIR/tensorboard (needs tensorboardX)",
    )
    p.add_argument(
        "--devices",
        type=_parse_devices,
        default=None,
        metavar="all|N",
        help="split the env batch over the first N devices, or all of them "
        "(num-envs must be a multiple of the count; default: 1, all of them "
        "when --distributed joined several processes; with --resume, the run's)",
    )
    p.add_argument(
        "--from-scratch",
        action="store_true",
        help="with --resume: when every checkpoint of the run is damaged, retrain from "
        "update 0 (without it that is an error)",
    )
    p.add_argument(
        "--skip-memory-check",
        action="store_true",
        help="start even if the analytic memory estimate exceeds the free device memory",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout")
    add_wandb_options(p, "one W&B run per run directory, a row per update")
    add_distributed_options(p, "the same run")
    add_config_options(p)
    p.set_defaults(func=run)


def _asdict(options) -> dict | None:
    import dataclasses

    return None if options is None else dataclasses.asdict(options)


def _parse_devices(text: str) -> str | int:
    if text == "all":
        return text
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected 'all' or a count >= 1, got {text!r}")
    return n


def _device_count(given: str | int | None, saved: int = 1) -> int:
    """How many devices the run's env batch is split over (every one multi-host)."""
    import jax

    from jaxpg.sharding import select_devices

    if given is None:
        given = "all" if jax.process_count() > 1 else saved
    try:
        return len(select_devices(given))
    except ValueError as exc:
        raise CommandError(f"--devices: {exc}") from None


def run(args: argparse.Namespace) -> int:
    import jax

    from jaxpg import run as runlib

    if args.checkpoint_every is not None and args.checkpoint_every < 1:
        raise CommandError(f"--checkpoint-every={args.checkpoint_every} must be >= 1")
    if args.log_every is not None and args.log_every < 1:
        raise CommandError(f"--log-every={args.log_every} must be >= 1")
    if args.keep_checkpoints < 1:
        raise CommandError(f"--keep-checkpoints={args.keep_checkpoints} must be >= 1")
    if args.from_scratch and not args.resume:
        raise CommandError("--from-scratch applies to --resume only")
    if args.tensorboard:
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            raise CommandError(
                "--tensorboard needs the tensorboardX package: pip install 'tensorboardX>=2.6,<3'"
            ) from None
    if args.print_config:
        config = _resume_config(args, Path(args.resume))[0] if args.resume else None
        print_config(config or resolve_config(args)[0])
        return 0
    if args.resume:
        run_dir = Path(args.resume)
        config, settings = _resume_config(args, run_dir)
    else:
        config, _ = resolve_config(args)
        settings = runlib.RunSettings(
            checkpoint_every=args.checkpoint_every or 100,
            keep_checkpoints=args.keep_checkpoints,
            log_every=args.log_every or 50,
            log_mode=args.log_mode or "chunks",
            tensorboard=args.tensorboard,
            devices=_device_count(args.devices),
            wandb=_asdict(wandb_options(args)),
        )
        from jaxpg.runspec import make_runspec

        try:
            runspec = make_runspec(config)
            runlib.env_mesh_for(config, settings)  # the devices can take it
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        run_dir = Path(args.out) if args.out else runlib.default_run_dir(config)
        try:
            files.check_writable_dir(run_dir, "--out")
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if not args.skip_memory_check:
            check_memory(config, settings.devices)
    settings = runlib.dataclasses.replace(settings, progress=not args.quiet)
    with ExitStack() as stack:
        if jax.process_index() == 0:
            if not args.resume:
                runlib.check_fresh_run_dir(run_dir)
                try:
                    run_dir.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise CommandError(
                        f"--out {run_dir} is not writable: {files.describe(exc)}"
                    ) from None
            stack.enter_context(RunLock(run_dir, "run", quiet=args.quiet))
            if not args.resume:
                runlib.prepare_run_dir(run_dir, config, settings, runspec.num_updates)
        summary = runlib.train_run(
            run_dir, config, settings, resume=bool(args.resume), from_scratch=args.from_scratch
        )
    if jax.process_index() != 0:
        return 0
    if args.json:
        emit_json(summary)
    else:
        ret = summary["final_return"]
        ret_s = f"{ret:.2f}" if ret is not None else "n/a"
        print(
            f"{summary['status']}: {summary['updates_done']}/{summary['num_updates']} "
            f"updates, {summary['env_steps']:,.0f} env steps in {summary['wall_time_s']:.1f} s, "
            f"final return {ret_s}; run dir {run_dir}"
        )
    if summary["status"] == "interrupted":
        import signal

        sig = signal.Signals[summary.get("signal", "SIGINT")]
        print(
            f"jaxpg: interrupted ({sig.name}) at update {summary['updates_done']}; continue "
            f"with: jaxpg train --resume {run_dir}",
            file=sys.stderr,
        )
        return 128 + int(sig)  # 130 for SIGINT, 143 for SIGTERM
    return 0


def _resume_config(args: argparse.Namespace, run_dir: Path):
    """The saved config of ``run_dir``; any option that would change it is an error."""
    import dataclasses

    from jaxpg import run as runlib

    if args.preset or args.config or args.out:
        given = [
            o
            for o, v in (("--preset", args.preset), ("--config", args.config), ("--out", args.out))
            if v
        ]
        raise CommandError(
            f"--resume continues {run_dir} with its saved config; drop {', '.join(given)}"
        )
    config, settings = runlib.load_run_config(run_dir)
    changed = [
        f"--{k.replace('_', '-')} (saved {getattr(config, k)!r}, given {v!r})"
        for k, v in config_overrides(args).items()
        if getattr(config, k) != v
    ]
    if changed:
        raise CommandError(
            f"--resume continues {run_dir} with its saved config; these options differ: "
            f"{'; '.join(changed)}"
        )
    for opt in ("checkpoint_every", "log_every", "log_mode"):
        given, saved = getattr(args, opt), getattr(settings, opt)
        if given not in (None, saved):
            raise CommandError(
                f"--resume keeps the run's --{opt.replace('_', '-')} {saved} (given {given}) "
                "so that it replays the same compiled program"
            )
    devices = _device_count(args.devices, settings.devices)
    if devices != settings.devices:
        print(
            f"jaxpg: note: the run was trained on {settings.devices} device(s) and continues "
            f"on {devices}: results match an uninterrupted run to float tolerance, not "
            "bitwise",
            file=sys.stderr,
        )
    settings = dataclasses.replace(
        settings,
        tensorboard=settings.tensorboard or args.tensorboard,
        devices=devices,
        wandb=settings.wandb or _asdict(wandb_options(args)),
    )
    return config, settings
