"""``jaxpg sweep``: seeds × a hyperparameter grid, one compiled program per static combination.

Examples::

  jaxpg sweep --preset acrobot-ppo --seeds 8 --grid lr=3e-4,1e-3
  jaxpg sweep --config sweep/config.json --out sweep2   # the same sweep again
  jaxpg sweep --seeds 16 --grid lr=1e-4,3e-4,1e-3 --grid gae_lambda=0.9,0.95,0.99 \\
      --total-timesteps 100000 --out runs/lr-lam

Writes ``sweep.csv``, ``summary.csv``, ``curves.png`` and ``config.json`` in
``--out`` (see ``jaxpg.commands._sweep_files``); finished chunks are saved as
they complete, so rerunning the same command after an interruption runs only
the unfinished ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys
import time
import typing
from contextlib import ExitStack
from pathlib import Path

from jaxpg.commands import _search
from jaxpg.commands.common import (
    CommandError,
    add_config_options,
    add_distributed_options,
    add_wandb_options,
    check_memory,
    emit_json,
    print_config,
    read_config_data,
    resolve_config,
    wandb_options,
    write_json_atomic,
)

ORDER = 20


def register(subparsers) -> None:
    """Add the ``sweep`` subcommand."""
    p = subparsers.add_parser(
        "sweep",
        help="train many seeds × a hyperparameter grid in one compiled program",
        description=(
            "Train every (grid point, seed) pair. Traced fields (lr, gamma, lam, clip_eps, "
            "ent_coef, vf_coef, max_grad_norm) are vmapped inside one compiled program; "
            "each combination of static fields (num_envs, hidden_sizes, estimator, ...) "
            "is its own program. Runs are sharded over all devices and split into chunks "
            "when the memory estimate says they would not fit."
        ),
    )
    p.add_argument(
        "--preset", metavar="NAME", help="start from a documented preset (see `jaxpg presets`)"
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="TOML, YAML or JSON file of Config fields, applied over the preset; a sweep's "
        "OUT/config.json also brings its grid and seeds (unless --grid/--seeds are given)",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved base config as JSON (a file --config reads) and exit",
    )
    p.add_argument(
        "--seeds",
        default=None,
        metavar="N|S,S,...",
        help="number of seeds (seed, seed+1, ...; see --seed) or a comma list (default: 8)",
    )
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="FIELD=V1,V2,...",
        help="a grid axis; repeat for a cartesian product. FIELD is a Config "
        "field or an alias (learning_rate→lr, gae_lambda→lam, discount→gamma,"
        " clip→clip_eps, entropy_coef→ent_coef, value_coef→vf_coef). "
        "hidden_sizes values use x: --grid hidden_sizes=64x64,32x32",
    )
    p.add_argument(
        "--out", default="sweep", metavar="DIR", help="output directory (default: ./sweep)"
    )
    p.add_argument(
        "--chunk",
        type=int,
        default=None,
        metavar="RUNS",
        help="runs per compiled call (default: from the memory estimate)",
    )
    p.add_argument(
        "--memory-fraction",
        type=float,
        default=0.5,
        metavar="F",
        help="share of free device memory (host RAM on CPU) a chunk may use",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="require an unfinished sweep in --out and continue it (the same "
        "command resumes anyway when --out holds this sweep's chunks)",
    )
    p.add_argument(
        "--restart", action="store_true", help="discard chunks saved in --out by an earlier run"
    )
    p.add_argument(
        "--skip-memory-check",
        action="store_true",
        help="start even if one run's analytic memory estimate exceeds the free device memory",
    )
    p.add_argument("--no-plot", action="store_true", help="skip curves.png")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument(
        "--bootstrap-seed",
        type=int,
        default=0,
        metavar="INT",
        help="seed of the bootstrap confidence intervals (default: 0)",
    )
    _search.add_options(p)
    add_wandb_options(
        p, "one W&B run per grid point with the statistics over seeds, grouped by --out"
    )
    add_distributed_options(p, "the sweep")
    add_config_options(p)
    p.set_defaults(func=run)


# -- parsing --------------------------------------------------------------------
def _parse_value(field: str, text: str):
    from jaxpg.config import Config

    hint = typing.get_type_hints(Config)[field]
    text = text.strip()
    try:
        if hint is bool or hint == bool | None:
            low = text.lower()
            table = {
                "true": True,
                "1": True,
                "yes": True,
                "on": True,
                "false": False,
                "0": False,
                "no": False,
                "off": False,
                "none": None,
                "auto": None,
            }
            if low not in table or (hint is bool and table[low] is None):
                raise ValueError(text)
            return table[low]
        if hint is int:
            return int(text)
        if hint is float:
            return float(text)
        if field in ("hidden_sizes", "conv_channels"):
            return tuple(int(x) for x in text.replace(":", "x").split("x") if x)
        return text
    except ValueError:
        raise CommandError(f"--grid {field}: cannot read {text!r} as {hint}") from None


def parse_grid(items: list[str]) -> dict:
    """``["lr=1e-4,3e-4", ...]`` → ``{"lr": [1e-4, 3e-4], ...}`` (aliases resolved later)."""
    from jaxpg.grid import canonical_name

    grid: dict = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not values.strip():
            raise CommandError(f"--grid {item!r}: expected FIELD=V1,V2,...")
        name = name.strip().replace("-", "_")
        try:
            field = canonical_name(name)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if name in grid:
            raise CommandError(
                f"--grid {name} given twice; list all its values in one --grid "
                f"{name}=V1,V2,... (repeat --grid only for different fields)"
            )
        grid[name] = [_parse_value(field, v) for v in values.split(",") if v.strip()]
    return grid


def _parse_seeds(text: str):
    try:
        parts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CommandError(f"--seeds {text!r}: expected a count or a comma list") from None
    if "," in text:
        return parts
    if len(parts) != 1 or parts[0] < 1:
        raise CommandError(f"--seeds {text!r}: the count must be >= 1")
    return parts[0]


def _sweep_from_record(args: argparse.Namespace, grid: dict, seeds):
    """The grid and seeds of a sweep's own ``config.json`` given as ``--config``.

    Options win: ``--grid`` replaces the whole recorded grid, ``--seeds`` the seeds.
    """
    data = read_config_data(args.config)
    where = f"--config {args.config}"
    if not args.grid and "grid" in data:
        recorded = data["grid"]
        if not isinstance(recorded, dict) or not all(
            isinstance(v, list) and v for v in recorded.values()
        ):
            raise CommandError(
                f"{where}: grid must be a table of FIELD = [V1, V2, ...] lists, got "
                f"{recorded!r:.80}"
            )
        grid = {
            k: [tuple(v) if isinstance(v, list) else v for v in values]
            for k, values in recorded.items()
        }
    if args.seeds is None and "seeds" in data:
        recorded = data["seeds"]
        if isinstance(recorded, bool) or not (
            (isinstance(recorded, int) and recorded >= 1)
            or (
                isinstance(recorded, list)
                and recorded
                and all(isinstance(s, int) and not isinstance(s, bool) for s in recorded)
            )
        ):
            raise CommandError(
                f"{where}: seeds must be a count >= 1 or a list of integers, got {recorded!r:.80}"
            )
        seeds = recorded
    return grid, seeds


# -- progress -------------------------------------------------------------------
class _Progress:
    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.start = time.perf_counter()

    def __call__(self, r) -> None:
        if self.quiet:
            return
        width = 24
        filled = int(width * r.runs_done / max(1, r.runs_total))
        bar = "#" * filled + "-" * (width - filled)
        print(
            f"jaxpg sweep: program {r.program + 1}/{r.num_programs} [{bar}] "
            f"chunk {r.chunk + 1}/{r.num_chunks} runs {r.runs_done}/{r.runs_total} "
            f"{r.seconds:.1f}s {r.env_steps_per_s:,.0f} steps/s "
            f"(elapsed {time.perf_counter() - self.start:.0f}s)",
            file=sys.stderr,
            flush=True,
        )


def _setup_logging(quiet: bool) -> None:
    logger = logging.getLogger("jaxpg.sweep")
    if quiet or logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("jaxpg sweep: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _finite_or_none(obj):
    """Strict JSON: NaN/inf (e.g. the SEM of one seed) become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite_or_none(v) for v in obj]
    return obj


# -- run ------------------------------------------------------------------------
def _program_dict(info) -> dict:
    d = dataclasses.asdict(info)
    d.pop("config")
    return d


def run(args: argparse.Namespace) -> int:
    """Check every input, then run the sweep with ``--out`` locked."""
    import jax

    from jaxpg import files, rundir
    from jaxpg.grid import check_grid
    from jaxpg.lock import RunLock
    from jaxpg.sweep import _seed_list as seed_list  # the sweep's own seed check

    if args.resume and args.restart:
        raise CommandError("--resume and --restart exclude each other")
    if not 0.0 < args.memory_fraction <= 1.0:  # also false for NaN
        raise CommandError(f"--memory-fraction={args.memory_fraction} must lie in (0, 1]")
    if args.chunk is not None and args.chunk < 1:
        raise CommandError(f"--chunk={args.chunk} must be an integer >= 1")
    if not 0 <= args.bootstrap_seed < 2**63:
        raise CommandError(f"--bootstrap-seed={args.bootstrap_seed} must lie in [0, 2**63)")
    config, _ = resolve_config(args)
    if args.print_config:
        print_config(config)
        return 0
    if args.search:
        if args.grid:
            raise CommandError("--search and --grid exclude each other; search with --space")
        return _search.run(args)
    grid = parse_grid(args.grid)
    seeds = _parse_seeds(args.seeds or "8")
    if args.config:
        grid, seeds = _sweep_from_record(args, grid, seeds)
    checked = check_grid(config, grid)  # every name and value, before any compile
    wandb = wandb_options(args)
    try:
        seed_list(config, seeds)
    except ValueError as exc:
        raise CommandError(f"--seeds {args.seeds}: {exc}") from None
    out = Path(args.out)
    try:
        files.check_writable_dir(out, "--out")
        rundir.check_kind(out, "sweep", "--out")  # never over a train run's config.json
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.resume and not (out / "chunks" / "fingerprint.json").is_file():
        raise CommandError(f"--resume: no unfinished sweep found in {out}")
    if not args.skip_memory_check:
        for static in checked.static_points:  # one run must fit on one device
            check_memory(config.replace(**static), what=f"one run{_where(static)}")
    writer = jax.process_index() == 0
    with ExitStack() as stack:
        if writer:
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CommandError(f"--out {out} is not writable: {files.describe(exc)}") from None
            stack.enter_context(RunLock(out, "sweep", quiet=args.quiet))
        return _run_locked(args, config, grid, seeds, out, writer, wandb)


def _where(static: dict) -> str:
    return f" of {static}" if static else ""


def _run_locked(args, config, grid, seeds, out: Path, writer: bool, wandb) -> int:
    """The sweep proper, with ``out`` locked (see :func:`run`)."""
    import jax

    import jaxpg
    from jaxpg import rundir
    from jaxpg.commands import _sweep_files as files
    from jaxpg.sweep import sweep

    payload = {
        "config": config.to_dict(),
        "grid": {k: list(v) for k, v in grid.items()},
        "seeds": seeds,
        "version": jaxpg.__version__,
    }
    # Multi-host: process 0 saves chunks; every process must skip the same runs, and
    # other hosts may not see process 0's disk, so resume is single-host only.
    single_host = jax.process_count() == 1
    store = None
    completed: dict = {}
    if writer:
        store = files.ChunkStore(out, payload, restart=args.restart, require=args.resume)
        completed = store.load() if single_host else {}
    resumed = sum(len(v) for v in completed.values())
    _setup_logging(args.quiet)
    if resumed and not args.quiet:
        print(
            f"jaxpg sweep: resuming: {resumed} finished run(s) found in {out / 'chunks'}",
            file=sys.stderr,
        )
    result = sweep(
        config,
        seeds,
        grid,
        chunk=args.chunk,
        memory_fraction=args.memory_fraction,
        completed=completed,
        on_chunk=store.save if store is not None else None,
        progress=_Progress(args.quiet),
        bootstrap_seed=args.bootstrap_seed,
    )
    programs = [_program_dict(p) for p in result.programs]
    if writer:
        files.write_tables(out, result)
        if not args.no_plot:
            files.write_curves(out / "curves.png", result, seed=args.bootstrap_seed)
        write_json_atomic(
            out / "config.json",
            {
                **rundir.identity("sweep", payload["config"]),
                **payload,
                "seeds": result.seeds,
                "devices": [str(d) for d in jax.devices()],
                "programs": programs,
            },
        )
    if wandb is not None and writer:
        from jaxpg.wandb_log import log_sweep

        log_sweep(wandb, result, out, seed=args.bootstrap_seed)
    if args.json and writer:
        best = min(result.summary, key=lambda r: r["rank"])
        emit_json(
            _finite_or_none(
                {
                    "out": str(out),
                    "num_runs": len(result.runs),
                    "num_points": len(result.points),
                    "seeds": result.seeds,
                    "resumed_runs": resumed,
                    "programs": programs,
                    "best": best,
                    "summary": result.summary,
                }
            )
        )
    return 0
