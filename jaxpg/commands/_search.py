"""``jaxpg sweep --search pbt|halving``: options, checks, checkpoints and the files written.

Layout of ``--out`` after a search::

  config.json          base config, space, method, member seeds (``jaxpg.sweep.load`` reads it)
  search.json          options, compilations, seconds, the best member and its values,
                       the lineage (PBT) or the rungs (halving)
  best_config.json     the base config with the best member's values (``jaxpg train --config``)
  curves.csv           per-member learning curves (``point`` = member / configuration)
  summary.csv          one row per member: its last values and final return, rank
  curves.{pdf,svg,png} IQM curves (one seed per member: the member's own curve)
  schedules.{pdf,svg,png}  PBT only: each member's values per generation, copies marked
  search_state.npz     PBT only: the population after the last finished generation
                       (sealed; a rerun of the same command resumes from it bitwise)
  optuna.db            optuna only: the study (Optuna's SQLite storage; a rerun resumes it)
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from jaxpg.commands.common import CommandError, read_config_data, resolve_config

METHODS = ("pbt", "halving", "optuna")


def add_options(p: argparse.ArgumentParser) -> None:
    """The ``--search`` options of ``jaxpg sweep``."""
    g = p.add_argument_group("search (--search pbt|halving|optuna; --grid is not used then)")
    g.add_argument("--search", choices=METHODS, default=None, help="search instead of a grid")
    g.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="FIELD=KIND:ARGS",
        help="a searched traced field: lr=loguniform:1e-4:1e-2, ent_coef=uniform:0:0.02, "
        "lam=choice:0.9,0.95,0.99; repeat per field (or a [space] table in --config)",
    )
    g.add_argument(
        "--population", type=int, default=8, metavar="P", help="PBT members / configurations"
    )
    g.add_argument(
        "--interval",
        type=int,
        default=None,
        metavar="K",
        help="PBT: updates per generation (must divide the run's updates; default about 1/4)",
    )
    g.add_argument("--quantile", type=float, default=0.25, help="PBT: share replaced per step")
    g.add_argument(
        "--resample-prob", type=float, default=0.25, help="PBT: chance an explored value is redrawn"
    )
    g.add_argument("--eta", type=int, default=3, help="halving: keep the best 1/ETA per rung")
    g.add_argument(
        "--rounds", type=int, default=4, help="optuna: rounds of --population trials each"
    )
    g.add_argument("--search-seed", type=int, default=0, help="seed of the search's draws")


def _space(args) -> list[str] | dict:
    if args.space:
        return list(args.space)
    if args.config:
        data = read_config_data(args.config)
        if isinstance(data.get("space"), dict | list):
            return data["space"]
    raise CommandError("--search needs a search space: --space FIELD=KIND:ARGS (or [space])")


def run(args: argparse.Namespace) -> int:
    """Check everything, then run the search with ``--out`` locked."""
    from jaxpg import files
    from jaxpg import search as S
    from jaxpg.lock import RunLock
    from jaxpg.space import check_space

    config, _ = resolve_config(args)
    try:
        space = check_space(config, _space(args))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.population < 1:
        raise CommandError(f"--population={args.population} must be >= 1")
    if not 0 <= args.search_seed < 2**31:
        raise CommandError(f"--search-seed={args.search_seed} must lie in [0, 2**31)")
    try:
        from jaxpg.runspec import make_runspec

        num_updates = make_runspec(config).num_updates
        if args.search == "pbt":
            opts = S.PBTOptions(
                population=args.population,
                interval=args.interval or S.default_interval(num_updates),
                quantile=args.quantile,
                resample_prob=args.resample_prob,
            )
            S.make_pbt(config, space, opts)  # every check, nothing compiled
        elif args.search == "halving":
            opts = None
            S.rung_plan(args.population, args.eta, num_updates)
        else:
            opts = None
            if args.rounds < 1:
                raise ValueError(f"--rounds={args.rounds} must be >= 1")
            from jaxpg.tuner import _import_optuna

            try:
                _import_optuna()
            except ImportError as exc:
                raise CommandError(str(exc)) from None
    except ValueError as exc:
        raise CommandError(f"--search {args.search}: {exc}") from None
    out = Path(args.out)
    try:
        files.check_writable_dir(out, "--out")
        out.mkdir(parents=True, exist_ok=True)
    except (ValueError, OSError) as exc:
        raise CommandError(str(exc)) from None
    seeds = list(range(config.seed, config.seed + args.population))
    with RunLock(out, "sweep", quiet=args.quiet):
        if args.search == "pbt":
            return _run_pbt(args, config, space, opts, seeds, out)
        if args.search == "optuna":
            return _run_optuna(args, config, space, out)
        return _run_halving(args, config, space, seeds, out)


# -- PBT ---------------------------------------------------------------------------
def _payload(args, config, space, seeds, extra: dict) -> dict:
    import jaxpg

    return {
        "config": config.to_dict(),
        "search": args.search,
        "space": space.texts(),
        "seeds": seeds,
        "search_seed": args.search_seed,
        "options": extra,
        "version": jaxpg.__version__,
    }


def _leaves_npz(prefix: str, tree, out: dict) -> None:
    import jax

    for i, x in enumerate(jax.tree.leaves(tree)):
        out[f"{prefix}{i}"] = np.asarray(x)


def _save_state(path: Path, key: str, done, states, hp, records) -> None:
    import jax

    from jaxpg import files

    rec = jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *records)
    arrays = {"fingerprint": np.asarray(key), "done": np.asarray(done)}
    _leaves_npz("s", states, arrays)
    _leaves_npz("h", hp, arrays)
    _leaves_npz("r", rec, arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    files.write_sealed(path, buf.getvalue())


def _load_state(path: Path, key: str, run, population: int):
    """``(done, states, hp, [records])`` saved by :func:`_save_state`, or None."""
    import jax
    import jax.numpy as jnp

    from jaxpg import files
    from jaxpg.config import HParams
    from jaxpg.runspec import init_state
    from jaxpg.search import Generation, _from_keys

    try:
        blob = files.read_sealed(path)
    except (OSError, ValueError) as exc:
        print(
            f"jaxpg sweep: warning: {path.name} unreadable ({exc}); starting over", file=sys.stderr
        )
        return None
    with np.load(io.BytesIO(blob)) as z:
        if str(z["fingerprint"]) != key:
            raise CommandError(
                f"{path} belongs to a different search; use another --out or --restart"
            )
        arrays = {k: np.asarray(z[k]) for k in z.files}
    template = jax.eval_shape(
        lambda: _from_keys(
            jax.lax.map(lambda s: init_state(run, jax.random.key(s)), jnp.arange(population))
        )
    )

    def rebuild(prefix, treedef):
        n = treedef.num_leaves
        return jax.tree.unflatten(treedef, [arrays[f"{prefix}{i}"] for i in range(n)])

    hp_def = jax.tree.structure(HParams(*range(len(HParams._fields))))
    gen_def = jax.tree.structure(Generation(0, 0, HParams(*range(len(HParams._fields))), 0, 0, 0))
    states = rebuild("s", jax.tree.structure(template))
    return int(arrays["done"]), states, rebuild("h", hp_def), [rebuild("r", gen_def)]


def _run_pbt(args, config, space, opts, seeds, out: Path) -> int:
    from jaxpg import search as S
    from jaxpg.commands._sweep_files import fingerprint

    program = S.make_pbt(config, space, opts)
    g_total = program.num_generations
    payload = _payload(args, config, space, seeds, opts._asdict())
    key = fingerprint(payload)
    state_path = out / "search_state.npz"
    resume = None
    if getattr(args, "restart", False) and state_path.exists():
        state_path.unlink()
    if state_path.exists():
        resume = _load_state(state_path, key, program.run, opts.population)
    elif getattr(args, "resume", False):
        raise CommandError(f"--resume: no unfinished search found in {out}")
    if resume is not None and not args.quiet:
        print(f"jaxpg sweep: resuming pbt after generation {resume[0]}/{g_total}", file=sys.stderr)
    start = time.perf_counter()

    def on_generations(done, states, hp, records):
        _save_state(state_path, key, done, states, hp, records)
        if args.quiet:
            return
        last = records[-1]
        score = last.score[:, -1]
        best = int(np.argmax(np.where(np.isnan(score), -np.inf, score)))
        values = ", ".join(
            f"{f}={float(getattr(last.hparams, f)[best, -1]):.4g}" for f in space.fields
        )
        print(
            f"jaxpg sweep: pbt generation {done}/{g_total}: best member {best} score "
            f"{score[best]:.2f} ({values}), {int(last.copied[:, -1].sum())} copied "
            f"(elapsed {time.perf_counter() - start:.0f}s)",
            file=sys.stderr,
            flush=True,
        )

    result = S.pbt(
        config,
        space,
        opts,
        seeds=seeds,
        search_seed=args.search_seed,
        generations_per_call=1,
        resume=resume,
        on_generations=on_generations,
    )
    seconds = time.perf_counter() - start
    _write_pbt(out, args, payload, result, seconds)
    return _report(args, out, result.best, result.best_hparams())


def _lineage(result) -> list[dict]:
    interval = result.opts.interval
    out = []
    for g in range(result.parent.shape[1]):
        out.append(
            {
                "generation": g,
                "updates": (g + 1) * interval,
                "score": [_num(x) for x in result.score[:, g]],
                "hparams": {
                    f: getattr(result.hparams, f)[:, g].tolist() for f in result.space.fields
                },
                "parent": result.parent[:, g].tolist(),
                "copied": result.copied[:, g].tolist(),
            }
        )
    return out


def _num(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _write_common(out: Path, args, payload, config, points, finals, curves, labels, search):
    from jaxpg import files, results
    from jaxpg.commands._sweep_files import _write_csv

    summary = results.summaries(points, [[f] for f in finals], seed=args.bootstrap_seed)
    if search.get("order"):  # halving: finalists first, then by the rung reached
        rank = {m: r + 1 for r, m in enumerate(search["order"])}
        summary = [s._replace(rank=rank[s.point]) for s in summary]
    rows = []
    for s in summary:
        d = s._asdict()
        values = d.pop("values")
        rank = d.pop("rank")
        rows.append({"point": d.pop("point"), **values, **d, "rank": rank})
    _write_csv(out / "summary.csv", rows)
    results.write_curves_csv(out / "curves.csv", curves)
    best = search["best"]
    files.write_json_atomic(
        out / "best_config.json", config.replace(**search["best_hparams"]).to_dict()
    )
    files.write_json_atomic(out / "search.json", search)
    files.write_json_atomic(out / "config.json", payload)
    if not args.no_plot:
        title = f"{config.env} {config.estimator}: {args.search}, best member {best}"
        results.plot_curves(curves, labels, out / "curves", title=title)


def _write_pbt(out: Path, args, payload, result, seconds: float) -> None:
    from jaxpg import results, stats

    p = result.episode_return.shape[0]
    finals = [stats.final_return(r) for r in result.episode_return]
    points = [
        {f: float(getattr(result.hparams, f)[i, -1]) for f in result.space.fields} for i in range(p)
    ]
    curves = results.curve_rows(range(p), result.seeds, result.env_steps, result.episode_return)
    search = {
        "method": "pbt",
        "space": result.space.texts(),
        "options": result.opts._asdict(),
        "population": p,
        "generations": int(result.parent.shape[1]),
        "compilations": 2,  # the initialisation and the generations program
        "seconds": seconds,
        "best": result.best,
        "best_hparams": result.best_hparams(),
        "lineage": _lineage(result),
    }
    _write_common(
        out, args, payload, result.config, points, finals, curves,
        [f"member {i}" for i in range(p)], search,
    )  # fmt: skip
    if not args.no_plot:
        _plot_schedules(out / "schedules", result)


def _plot_schedules(stem: Path, result) -> None:
    """Each member's searched values per generation (steps), copies marked with dots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jaxpg.results import save_figure

    fields = result.space.fields
    kinds = {d.field: d.kind for d in result.space.dims}
    p, g = result.parent.shape
    x = np.arange(g + 1) * result.opts.interval
    with matplotlib.rc_context({"font.size": 8, "svg.hashsalt": "jaxpg"}):
        fig, axes = plt.subplots(
            len(fields), 1, figsize=(6.0, 1.8 * len(fields) + 0.6), squeeze=False
        )
        for ax, f in zip(axes[:, 0], fields, strict=True):
            v = getattr(result.hparams, f)
            for i in range(p):
                y = np.append(v[i], v[i, -1])
                (line,) = ax.step(x, y, where="post", lw=0.9)
                hits = np.nonzero(result.copied[i])[0]
                ax.plot(
                    x[hits + 1],
                    v[i, np.minimum(hits + 1, g - 1)],
                    "o",
                    ms=2.5,
                    color=line.get_color(),
                )
            if kinds[f] == "loguniform":
                ax.set_yscale("log")
            ax.set_ylabel(f)
            ax.grid(alpha=0.3, lw=0.4)
        axes[-1, 0].set_xlabel("updates (dots: the member copied a better one and explored)")
        axes[0, 0].set_title(f"PBT schedules: {p} members, {g} generations", fontsize=8)
        fig.tight_layout()
        try:
            save_figure(fig, stem)
        finally:
            plt.close(fig)


# -- halving -----------------------------------------------------------------------
def _run_halving(args, config, space, seeds, out: Path) -> int:
    from jaxpg import results, stats
    from jaxpg import search as S

    start = time.perf_counter()
    total = len(S.rung_plan(args.population, args.eta, 1 << 30))

    def on_rung(r):
        if args.quiet:
            return
        s = np.where(np.isnan(r.score), -np.inf, r.score)
        print(
            f"jaxpg sweep: halving rung {len(rungs_seen) + 1}/{total}: {len(r.members)} "
            f"configuration(s) to {r.updates} updates, best score {s.max():.2f} "
            f"(compile {r.compile_s:.1f}s, run {r.run_s:.1f}s)",
            file=sys.stderr,
            flush=True,
        )
        rungs_seen.append(r)

    rungs_seen: list = []
    res = S.halving(
        config, space, args.population, eta=args.eta, seeds=seeds,
        search_seed=args.search_seed, on_rung=on_rung,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    n = args.population
    rets = {m: [] for m in range(n)}
    steps = {m: [] for m in range(n)}
    reached = dict.fromkeys(range(n), 0)
    last_score = dict.fromkeys(range(n), -math.inf)
    for r in res.rungs:
        for i, m in enumerate(r.members.tolist()):
            rets[m].append(r.episode_return[i])
            steps[m].append(r.env_steps[i])
            reached[m] = r.updates
            last_score[m] = float(r.score[i]) if math.isfinite(r.score[i]) else -math.inf
    parts = [
        results.curve_rows([m], [seeds[m]], [np.concatenate(steps[m])], [np.concatenate(rets[m])])
        for m in range(n)
    ]
    curves = results.Curves(*(np.concatenate(cols) for cols in zip(*parts, strict=True)))
    finals = [stats.final_return(np.concatenate(rets[m])) for m in range(n)]
    order = sorted(range(n), key=lambda m: (-reached[m], -last_score[m], m))
    points = [
        {**{f: float(getattr(res.hparams, f)[m]) for f in space.fields}, "updates": reached[m]}
        for m in range(n)
    ]
    search = {
        "method": "halving",
        "space": space.texts(),
        "options": {"eta": args.eta, "num_configs": n},
        "population": n,
        "compilations": len(res.rungs) + 1,  # one per rung and the initialisation
        "seconds": seconds,
        "best": res.best,
        "best_hparams": res.best_hparams(),
        "order": order,
        "rungs": [
            {
                "members": r.members.tolist(),
                "updates": r.updates,
                "score": [_num(x) for x in r.score],
                "compile_s": r.compile_s,
                "run_s": r.run_s,
            }
            for r in res.rungs
        ],
    }
    payload = _payload(args, config, space, seeds, search["options"])
    labels = [f"config {m} ({reached[m]} updates)" for m in range(n)]
    _write_common(out, args, payload, config, points, finals, curves, labels, search)
    return _report(args, out, res.best, res.best_hparams())


# -- optuna ------------------------------------------------------------------------
def _run_optuna(args, config, space, out: Path) -> int:
    from jaxpg import results
    from jaxpg.commands._sweep_files import fingerprint
    from jaxpg.tuner import optuna_search

    options = {"batch": args.population, "sampler": "TPE"}  # --rounds may grow on a rerun
    payload = _payload(args, config, space, [], options)
    study_name = fingerprint(payload)
    if getattr(args, "restart", False) and (out / "optuna.db").exists():
        (out / "optuna.db").unlink()
    start = time.perf_counter()

    def on_batch(r, trials):
        if args.quiet:
            return
        best = max(trials, key=lambda t: -math.inf if math.isnan(t.score) else t.score)
        shown = ", ".join(f"{k}={v:.4g}" for k, v in best.values.items())
        print(
            f"jaxpg sweep: optuna round {r + 1}/{args.rounds}: {len(trials)} trials, best "
            f"{best.score:.2f} (trial {best.number}: {shown}) "
            f"(elapsed {time.perf_counter() - start:.0f}s)",
            file=sys.stderr,
            flush=True,
        )

    res = optuna_search(
        config, space, batch=args.population, rounds=args.rounds, storage=out / "optuna.db",
        study_name=study_name, sampler_seed=args.search_seed, on_batch=on_batch,
    )  # fmt: skip
    trials = res.trials
    payload["seeds"] = [t.seed for t in trials]
    curves = results.Curves(
        *(
            np.concatenate(cols)
            for cols in zip(
                *[
                    results.curve_rows([j], [t.seed], [t.env_steps], [t.episode_return])
                    for j, t in enumerate(trials)
                ],
                strict=True,
            )
        )
    )
    best_row = next(j for j, t in enumerate(trials) if t.number == res.best_number)
    search = {
        "method": "optuna",
        "space": space.texts(),
        "options": {**options, "rounds": args.rounds},
        "trials": [
            {
                "point": j,
                "number": t.number,
                "seed": t.seed,
                "values": t.values,
                "score": _num(t.score),
            }
            for j, t in enumerate(trials)
        ],
        "compilations": 1,  # the sweep program, for every round
        "seconds": time.perf_counter() - start,
        "best": best_row,
        "best_trial": res.best_number,
        "best_hparams": res.best_values,
    }
    _write_common(
        out, args, payload, config, [t.values for t in trials], [t.score for t in trials],
        curves, [f"trial {t.number}" for t in trials], search,
    )  # fmt: skip
    return _report(args, out, best_row, res.best_values)


def _report(args, out: Path, best: int, values: dict) -> int:
    if args.json:
        print(
            json.dumps(
                {"out": str(out), "method": args.search, "best": best, "best_hparams": values}
            )
        )
    elif not args.quiet:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        print(
            f"jaxpg sweep: best member {best}: {shown}; train it with "
            f"`jaxpg train --config {out / 'best_config.json'}`",
            file=sys.stderr,
        )
    return 0
