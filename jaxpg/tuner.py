"""Batched Optuna: ask a batch of trials, train them vmapped in one program, tell the batch.

An optional extra (``pip install "jaxpg[optuna]"``). Each round asks the study
for ``batch`` trials, trains them as one call of the sweep program
(:func:`jaxpg.sweep.make_batched_train`: the runs vmapped, compiled once for
the whole search), and tells each trial its final return
(:func:`jaxpg.stats.final_return`; a run with no finished episode is told as
failed). The sampler is TPE (seeded) by default. The study lives in Optuna's
own SQLite storage, so a search resumes across processes: finished trials are
kept, trials a killed process had asked for but not told are marked failed,
and the remaining rounds run. Trial ``n`` trains with seed ``config.seed + n``.
Only traced fields are searched (one program); search statics with one search
per static combination.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from jaxpg import compiling, stats
from jaxpg.config import TRACED_FIELDS, Config, HParams
from jaxpg.space import Space


class Trial(NamedTuple):
    """One told trial."""

    number: int
    seed: int
    values: dict  # {field: value} of the searched fields
    score: float  # final return (NaN: told as failed)
    episode_return: np.ndarray  # [U]
    env_steps: np.ndarray  # [U]


class TunerResult(NamedTuple):
    config: Config
    space: Space
    trials: list[Trial]  # every finished trial of the study (earlier processes too), by number
    best_number: int
    best_values: dict
    best_score: float
    compilations: int


def _import_optuna():
    try:
        import optuna
    except ImportError:
        raise ImportError(
            'the optuna search needs the optional extra: pip install "jaxpg[optuna]"'
        ) from None
    return optuna


def _suggest(trial, space: Space) -> dict:
    out = {}
    for d in space.dims:
        if d.kind == "choice":
            out[d.field] = float(trial.suggest_categorical(d.field, list(d.choices)))
        else:
            out[d.field] = float(
                trial.suggest_float(d.field, d.low, d.high, log=d.kind == "loguniform")
            )
    return out


def optuna_search(
    config: Config,
    space: Space,
    *,
    batch: int,
    rounds: int,
    storage: str | os.PathLike,
    study_name: str = "jaxpg",
    sampler_seed: int = 0,
    sampler: Any = None,
    on_batch: Callable[[int, list[Trial]], None] | None = None,
) -> TunerResult:
    """Run ``rounds`` rounds of ``batch`` trials (module docstring).

    Args:
      config: base configuration.
      space: checked search space (:func:`jaxpg.space.check_space`).
      batch: trials per round (one compiled call).
      rounds: rounds in all, including those a resumed study has finished.
      storage: the SQLite file of the study.
      study_name: the study's name in it.
      sampler_seed: seed of the default TPE sampler.
      sampler: an Optuna sampler replacing TPE.
      on_batch: ``on_batch(round, trials)`` after each round.

    Returns:
      :class:`TunerResult` (``best_*`` over the whole study).

    Raises:
      ImportError: optuna is not installed.
      ValueError: ``batch`` or ``rounds`` below 1.
    """
    if batch < 1 or rounds < 1:
        raise ValueError(f"batch={batch} and rounds={rounds} must be >= 1")
    optuna = _import_optuna()
    from jaxpg.sweep import make_batched_train

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name,
        storage=f"sqlite:///{os.fspath(storage)}",
        direction="maximize",
        load_if_exists=True,
        sampler=sampler or optuna.samplers.TPESampler(seed=sampler_seed),
    )
    state = optuna.trial.TrialState
    for t in study.get_trials(deepcopy=False, states=(state.RUNNING,)):
        study.tell(t.number, state=state.FAIL)  # asked by a process that was killed
    finished = len(study.get_trials(deepcopy=False, states=(state.COMPLETE, state.FAIL)))
    program = compiling.jit(make_batched_train(config))
    base = config.hparams()
    for r in range(finished // batch, rounds):
        trials = [study.ask() for _ in range(batch)]
        values = [_suggest(t, space) for t in trials]
        seeds = np.asarray([config.seed + t.number for t in trials], np.int32)
        hp = HParams(
            *(
                np.asarray([v.get(f, float(getattr(base, f))) for v in values], np.float32)
                for f in TRACED_FIELDS
            )
        )
        (ret, steps), _ = program(seeds, hp)
        ret, steps = np.asarray(ret), np.asarray(steps)
        done = []
        for i, t in enumerate(trials):
            score = stats.final_return(ret[i])
            t.set_user_attr("seed", int(seeds[i]))
            t.set_user_attr("episode_return", [float(x) for x in ret[i]])
            t.set_user_attr("env_steps", [float(x) for x in steps[i]])
            if np.isfinite(score):
                study.tell(t, score)
            else:
                study.tell(t, state=state.FAIL)
            done.append(Trial(t.number, int(seeds[i]), values[i], score, ret[i], steps[i]))
        if on_batch is not None:
            on_batch(r, done)
    best = study.best_trial
    return TunerResult(
        config,
        space,
        _trials(study, space),
        best.number,
        {f: float(best.params[f]) for f in space.fields},
        float(best.value),
        program._cache_size() if hasattr(program, "_cache_size") else 1,
    )


def _trials(study, space: Space) -> list[Trial]:
    """Every trial of ``study`` that was trained, from its stored attributes."""
    out = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        attrs = t.user_attrs
        if "episode_return" not in attrs:
            continue
        ret = np.asarray(attrs["episode_return"], np.float64)
        out.append(
            Trial(
                t.number,
                int(attrs["seed"]),
                {f: float(t.params[f]) for f in space.fields},
                float(t.value) if t.value is not None else float("nan"),
                ret,
                np.asarray(attrs["env_steps"], np.float64),
            )
        )
    return out
