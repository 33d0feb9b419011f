"""Sweeps: seeds × traced hyperparameters in one compiled program per static combination.

For each combination of the grid's static fields (num_envs, hidden_sizes,
estimator, ...) one program is compiled (:func:`make_batched_train`): the pure
``make_train(config)`` run vmapped over a flat run axis ``[R]``, run ``r = j·S + s``
training grid point ``j`` with ``seeds[s]`` (key ``jax.random.key(seed)``, the
same key a single ``train`` call with that seed gets). The run axis is sharded
over every device (:mod:`jaxpg.sharding`) and cut into equal chunks when the
memory estimate says the whole sweep would not fit; every chunk reuses the
same compiled executable. Statistics over seeds come from :mod:`jaxpg.stats`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpg import compiling, sharding, stats
from jaxpg.config import Config, HParams
from jaxpg.grid import ALIASES, Grid, check_grid, hparams_batch
from jaxpg.loop import scan_updates
from jaxpg.results import LoadedSweep, load
from jaxpg.runspec import init_state, make_runspec

log = logging.getLogger("jaxpg.sweep")

__all__ = [
    "ALIASES",
    "ChunkReport",
    "LoadedSweep",
    "ProgramInfo",
    "RunResult",
    "SweepResult",
    "estimate_run_bytes",
    "load",
    "make_batched_train",
    "search",
    "sweep",
]


class RunResult(NamedTuple):
    """One run: a grid point trained with one seed."""

    point: int  # index into SweepResult.points
    seed: int
    episode_return: np.ndarray  # [U] learning curve (NaN until an episode ends)
    env_steps: np.ndarray  # [U] env steps after each update

    @property
    def diverged_at(self) -> int:
        """0, or the 1-based update whose loss or parameters became NaN/inf.

        The sweep program runs with the guard (:func:`jaxpg.loop.scan_updates`): from
        that update on nothing is applied, its curve is NaN and its ``env_steps`` 0.
        """
        stopped = np.flatnonzero(np.asarray(self.env_steps) <= 0)
        return int(stopped[0]) + 1 if stopped.size else 0

    @property
    def final_return(self) -> float:
        """The mean return of the last 5% of updates (:func:`jaxpg.stats.final_return`)."""
        return stats.final_return(self.episode_return)


class ChunkReport(NamedTuple):
    """Progress of a sweep, passed to ``progress`` after each chunk."""

    program: int
    num_programs: int
    chunk: int
    num_chunks: int
    runs_done: int  # in this program, including resumed runs
    runs_total: int
    seconds: float
    env_steps_per_s: float


@dataclasses.dataclass
class ProgramInfo:
    """How one static combination ran: chunking, memory and timings."""

    static: dict
    config: Config
    num_runs: int
    num_devices: int
    chunk: int = 0  # runs per chunk (a multiple of num_devices)
    num_chunks: int = 0
    resumed_runs: int = 0
    budget_bytes: int = 0  # per device
    budget_source: str = ""
    estimated_bytes_per_run: int = 0
    compiled_bytes_per_device: int = 0  # from memory_analysis(), 0 if unavailable
    compiles: int = 0  # 0 when the program came from this process's cache
    compile_s: float = 0.0
    run_s: float = 0.0


@dataclasses.dataclass
class SweepResult:
    """Everything a sweep produced; ``summary`` has one row per grid point."""

    config: Config
    grid: Grid
    seeds: list[int]
    points: list[dict]
    runs: list[RunResult]
    summary: list[dict]
    programs: list[ProgramInfo]
    states: list | None = None  # per program: stacked final TrainState [R, ...]

    def curves(self, point: int) -> np.ndarray:
        """Learning curves ``[S, U]`` of one grid point (seeds in ``self.seeds`` order).

        Args:
          point: index of the grid point in ``self.points``.

        Returns:
          ``[S, U]``: each seed's per-update mean episode return (NaN before its
          first episode ended).
        """
        return np.stack([r.episode_return for r in self.runs if r.point == point])


# -- memory ------------------------------------------------------------------
def _itemsize(dtype) -> int:
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return 8  # a threefry key is two uint32 words
    return np.dtype(dtype).itemsize


def _tree_bytes(tree) -> int:
    return int(
        sum(
            int(np.prod(x.shape)) * _itemsize(x.dtype)
            for x in jax.tree.leaves(tree)
            if hasattr(x, "dtype")
        )
    )


def estimate_run_bytes(config: Config, env=None, env_params=None) -> int:
    """Analytic upper estimate of one run's device memory, without tracing the run.

    ``3 × state + metrics + 6 × rollout + activations``: the train state
    (params, Adam moments, envs) double-buffered plus gradients, the per-update
    metrics (at most 16 float32 per update), the ``[T, B]`` transition with its
    shuffled PPO copy and estimator weights, and forward/backward activations of
    both networks over the batch (convolutions included for ``network="cnn"``).
    It errs high (about 3× the compiled figure for small CartPole runs); the
    compiled program's own figure is checked after.

    Args:
      config: the run's configuration.
      env, env_params: optional environment instance (or id) and params
        overriding ``config.env``.

    Returns:
      The estimate in bytes.
    """
    run = make_runspec(config, env, env_params)
    state = jax.eval_shape(lambda k: init_state(run, k), jax.random.key(0))
    n = run.horizon * config.num_envs
    transition = n * (2 * run.spec.obs_size + run.spec.action_dim + 10) * 4
    conv = n * run.spec.obs_size * sum(config.conv_channels) if config.network == "cnn" else 0
    activations = (n * sum(config.hidden_sizes) + conv) * 4 * 2 * 3
    metrics = run.num_updates * 16 * 4
    return 3 * _tree_bytes(state) + metrics + 6 * transition + activations


def _compiled_bytes(compiled) -> int:
    try:
        m = compiled.memory_analysis()
        return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)
    except Exception:  # noqa: BLE001 - not every backend implements it
        return 0


# -- one program ---------------------------------------------------------------
def make_batched_train(
    config: Config, env=None, env_params=None, *, keep_state: bool = False
) -> Callable:
    """The sweep program: ``runs(seeds[R] int32, hparams: HParams of [R]) -> outputs``.

    Equal to ``jax.vmap`` of ``make_train(config)`` over ``(jax.random.key(seed),
    hparams)`` (the tests check it run by run), with one difference in *how*: the
    initial states are built with ``lax.map`` (one run at a time) and only the
    scan of updates is vmapped. A vmapped init batches the QR of the orthogonal
    initializer, and jaxlib's batched LAPACK kernels (``ParallelBatchMap``) block
    a CPU thread-pool thread while waiting for others; two of them at once
    deadlocked a 2-core machine. Initialisation is a negligible part of a run.

    Args:
      config: the static configuration every run shares.
      env, env_params: optional environment instance (or id) and params.
      keep_state: also return the runs' final states.

    Returns:
      ``runs`` (not jitted) with outputs ``((episode_return [R, U], env_steps
      [R, U]), state)``, float32, U = the run's number of updates; ``state`` the
      stacked final ``TrainState`` ``[R, ...]`` if ``keep_state`` else ``None``.
      ``runs.num_traces`` counts how often it has been traced.
    """
    run = make_runspec(config, env, env_params)

    def one(state, hp):
        # As make_train(guard=True): a run that diverges stops there (NaN curve, 0 steps).
        out = scan_updates(run, state, hp, run.num_updates, guard=True)
        kept = out.metrics["update"] > 0
        ret = jnp.where(kept, out.metrics["episode_return"], jnp.nan)
        return (ret, out.metrics["env_steps"]), out.state

    def runs(seeds: jax.Array, hp: HParams):
        runs.num_traces += 1  # Python side effect: runs at trace time only
        states = jax.lax.map(lambda s: init_state(run, jax.random.key(s)), seeds)
        curves, state = jax.vmap(one)(states, hp)
        return curves, (state if keep_state else None)

    runs.num_traces = 0
    return runs


# Compiled sweep programs of this process, so that a second sweep of the same static
# config (new seeds or hyperparameter values) compiles nothing. Keyed by the
# static config, chunk size, devices and outputs; not used with an ``env`` instance.
_CACHE: dict = {}
_CACHE_SIZE = 16


def _compile(fn, chunk: int, shard, info: ProgramInfo, cache_key):
    key = None if cache_key is None else (*cache_key, chunk)
    if key is not None and key in _CACHE:
        compiled = _CACHE[key]
        info.compiled_bytes_per_device = _compiled_bytes(compiled)
        return compiled
    spec_seeds = jax.ShapeDtypeStruct((chunk,), jnp.int32, sharding=shard)
    spec_hp = HParams(
        *[jax.ShapeDtypeStruct((chunk,), jnp.float32, sharding=shard) for _ in HParams._fields]
    )
    t0 = time.perf_counter()
    compiled = compiling.jit(fn, out_shardings=shard).lower(spec_seeds, spec_hp).compile()
    info.compile_s += time.perf_counter() - t0
    info.compiles += 1
    info.compiled_bytes_per_device = _compiled_bytes(compiled)
    if key is not None:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))  # oldest first
        _CACHE[key] = compiled
    return compiled


def _plan_chunk(info: ProgramInfo, remaining: int, chunk: int | None) -> int:
    d = info.num_devices
    if chunk is not None:
        return sharding.round_up(min(max(1, chunk), remaining), d)
    per_device = max(1, info.budget_bytes // max(1, info.estimated_bytes_per_run))
    fit = max(d, per_device * d)
    return sharding.round_up(min(fit, remaining), d) if fit >= remaining else fit


def _shrink_to_compiled(info: ProgramInfo, size: int) -> int | None:
    """A smaller chunk when the compiled program of ``size`` runs is over budget, else None.

    The compiled figure is per device for ``size / num_devices`` runs; the new
    chunk fits the budget at that rate (at least one run per device).
    """
    d = info.num_devices
    used = info.compiled_bytes_per_device
    if not used or used <= info.budget_bytes or size <= d:
        return None
    per_run_per_device = used / (size / d)
    fit = max(1, int(info.budget_bytes // per_run_per_device))
    return min(size - d, fit * d) if fit * d < size else None


def _run_program(
    info: ProgramInfo,
    points: list[dict],
    seeds: Sequence[int],
    *,
    chunk: int | None,
    mesh,
    memory_fraction: float,
    keep_state: bool,
    done: Mapping[int, tuple],
    save: Callable | None,
    progress: Callable | None,
    env,
    env_params,
    index: int,
    num_programs: int,
):
    config = info.config
    fn = make_batched_train(config, env, env_params, keep_state=keep_state)
    devices = tuple(d.id for d in mesh.devices.flat)
    cached = env is None and env_params is None
    cache_key = (config, keep_state, devices) if cached else None
    shard = sharding.run_sharding(mesh)
    hp_all = hparams_batch(config, points, len(seeds))
    seed_all = np.tile(np.asarray(seeds, np.int32), len(points))
    todo = np.asarray([r for r in range(info.num_runs) if r not in done], np.int64)
    info.resumed_runs = info.num_runs - len(todo)
    results: dict[int, tuple] = dict(done)
    states = []
    if len(todo):
        info.budget_bytes, info.budget_source = sharding.device_memory_budget(mesh, memory_fraction)
        info.estimated_bytes_per_run = estimate_run_bytes(config, env, env_params)
        size = _plan_chunk(info, len(todo), chunk)
        log.info(
            "program %d/%d %s: compiling for chunks of %d run(s) (estimate %.1f MiB "
            "per run, budget %.0f MiB per device from %s)",
            index + 1,
            num_programs,
            info.static or "(no static fields)",
            size,
            info.estimated_bytes_per_run / 2**20,
            info.budget_bytes / 2**20,
            info.budget_source,
        )
        compiled = _compile(fn, size, shard, info, cache_key)
        smaller = None if chunk is not None else _shrink_to_compiled(info, size)
        if smaller is not None:
            log.warning(
                "program %d: the compiled chunk needs %.0f MiB per device, over the budget; "
                "recompiling with chunk=%d",
                index + 1,
                info.compiled_bytes_per_device / 2**20,
                smaller,
            )
            size = smaller
            compiled = _compile(fn, size, shard, info, cache_key)
        info.chunk = size
        info.num_chunks = -(-len(todo) // size)
        log.info(
            "program %d/%d %s: %d runs (%d to do) in %d chunk(s) of %d on %d device(s)",
            index + 1,
            num_programs,
            info.static or "(no static fields)",
            info.num_runs,
            len(todo),
            info.num_chunks,
            size,
            info.num_devices,
        )
        for c in range(info.num_chunks):
            ids = todo[c * size : (c + 1) * size]
            padded = np.concatenate([ids, np.full(size - len(ids), ids[0])])
            seeds_in = sharding.put_runs(seed_all[padded], shard)
            hp_in = HParams(*(sharding.put_runs(x[padded], shard) for x in hp_all))
            t0 = time.perf_counter()
            (ret, steps), state = compiled(seeds_in, hp_in)
            ret, steps = sharding.fetch((ret, steps))
            dt = time.perf_counter() - t0
            info.run_s += dt
            n = len(ids)
            ret, steps = np.asarray(ret)[:n], np.asarray(steps)[:n]
            for i, r in enumerate(ids):
                results[int(r)] = (ret[i], steps[i])
            if keep_state:
                states.append(jax.tree.map(lambda x, n=n: x[:n], state))
            if save is not None:
                save(index, ids, ret, steps)
            if progress is not None:
                total_steps = float(np.sum(steps[:, -1]))
                progress(
                    ChunkReport(
                        index,
                        num_programs,
                        c,
                        info.num_chunks,
                        len(results),
                        info.num_runs,
                        dt,
                        total_steps / dt,
                    )
                )
    if fn.num_traces != info.compiles:  # pragma: no cover - a guard on the design
        raise RuntimeError(f"program traced {fn.num_traces} times for {info.compiles} compiles")
    state = None
    if keep_state and states:
        state = jax.tree.map(lambda *xs: jnp.concatenate(xs), *states)
    return results, state


def _summarize(points: list[dict], runs: list[RunResult], seed: int) -> list[dict]:
    rows = []
    for j, values in enumerate(points):
        mine = [r for r in runs if r.point == j]
        finals = [r.final_return for r in mine]
        diverged = sum(r.diverged_at > 0 for r in mine)
        rows.append(
            {"point": j, **values, **stats.summarize(finals, seed=seed), "diverged": diverged}
        )
    # A point with a diverged seed is not ranked like the others: after every healthy one.
    means = [r["mean"] if not r["diverged"] else math.nan for r in rows]
    ranks = stats.rank(means, [r["iqm"] for r in rows])
    healthy = sum(not r["diverged"] for r in rows)
    sick_rows = [r for r in rows if r["diverged"]]
    sick = stats.rank([r["mean"] for r in sick_rows], [r["iqm"] for r in sick_rows])
    for row, rk in zip(rows, ranks, strict=True):
        row["rank"] = rk
    for row, rk in zip(sick_rows, sick, strict=True):
        row["rank"] = healthy + rk
    for row in sick_rows:
        log.warning(
            "point %d (%s): %d seed(s) diverged (NaN/inf loss or parameters); "
            "ranked after every point that did not",
            row["point"],
            ", ".join(f"{k}={points[row['point']][k]}" for k in points[row["point"]]),
            row["diverged"],
        )
    return rows


def sweep(
    config: Config,
    seeds: int | Sequence[int] = 8,
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    chunk: int | None = None,
    devices: Sequence[Any] | None = None,
    memory_fraction: float = 0.5,
    return_states: bool = False,
    completed: Mapping[int, Mapping[int, tuple]] | None = None,
    on_chunk: Callable[[int, np.ndarray, np.ndarray, np.ndarray], None] | None = None,
    progress: Callable[[ChunkReport], None] | None = None,
    bootstrap_seed: int = 0,
    env=None,
    env_params=None,
) -> SweepResult:
    """Train every (grid point, seed) pair; one compiled program per static combination.

    Runs of one program share a single executable: ``vmap`` over the flat run
    axis, sharded over ``devices`` (all by default, every host after
    :func:`jaxpg.sharding.initialize_distributed`), padded to a multiple of the
    device count. Before compiling, the memory of one run is estimated
    (:func:`estimate_run_bytes`) against ``memory_fraction`` of the free device
    memory (host RAM on CPU) and the runs are cut into chunks if needed; the
    compiled program's ``memory_analysis()`` is checked too.

    Args:
      config: base configuration; grid values override its fields.
      seeds: a count ``n`` (seeds ``config.seed … config.seed + n − 1``) or a
        list of non-negative integer seeds. Run with seed ``s`` uses
        ``jax.random.key(s)``, exactly like ``make_train(config)(key(s))``.
      grid: ``{field: [values]}``; any ``Config`` field except ``seed``, or an
        alias from :data:`ALIASES` (``gae_lambda``, ``learning_rate``, ...).
      chunk: runs per compiled call (rounded up to a multiple of the device
        count); ``None`` chooses from the memory estimate.
      devices: devices to shard over (default ``jax.devices()``).
      memory_fraction: share of free memory a chunk may plan to use.
      return_states: also return each program's final ``TrainState`` stacked
        over its runs (memory heavy; not with ``completed``).
      completed: ``{program: {run: (episode_return[U], env_steps[U])}}`` of runs
        done earlier (resume); they are not run again.
      on_chunk: ``on_chunk(program, run_ids[n], episode_return[n, U],
        env_steps[n, U])`` after each chunk, e.g. to save it.
      progress: called with a :class:`ChunkReport` after each chunk.
      bootstrap_seed: seed of the bootstrap confidence intervals.
      env: optional gymnax ``Environment`` instance overriding ``config.env``.
      env_params: optional params for ``env``.

    Returns:
      A :class:`SweepResult`: ``points`` (grid values per point, static fields
      outermost), ``runs`` point-major then seed, ``summary`` (per point: n,
      mean, sem, 95% bootstrap CI, IQM, median, min, max of the final return,
      and ``rank``, 1 = best mean) and ``programs`` (chunking, memory, timings).

    Raises:
      ValueError: for a bad grid name or value, or bad seeds, before compiling.

    Example:
      >>> cfg = Config(num_envs=2, num_steps=8, total_timesteps=32, num_minibatches=2)
      >>> res = sweep(cfg, seeds=2, grid={"learning_rate": [1e-3, 3e-4]})
      >>> len(res.runs), [row["lr"] for row in res.summary]
      (4, [0.001, 0.0003])
    """
    checked = check_grid(config, grid)
    seed_list = _seed_list(config, seeds)
    if return_states and completed:
        raise ValueError("return_states=True cannot be combined with resumed runs")
    if chunk is not None and chunk < 1:
        raise ValueError(f"chunk={chunk!r} must be an integer >= 1")
    mesh = sharding.run_mesh(devices)
    traced_points = checked.traced_points
    static_points = checked.static_points
    if len(static_points) > 1:
        log.info(
            "static grid fields %s: %d programs, one compile each",
            list(checked.static),
            len(static_points),
        )
    points, runs, programs, states = [], [], [], []
    for p, static in enumerate(static_points):
        info = ProgramInfo(
            static=static,
            config=config.replace(**static),
            num_runs=len(traced_points) * len(seed_list),
            num_devices=mesh.devices.size,
        )
        results, state = _run_program(
            info,
            traced_points,
            seed_list,
            chunk=chunk,
            mesh=mesh,
            memory_fraction=memory_fraction,
            keep_state=return_states,
            done=(completed or {}).get(p, {}),
            save=on_chunk,
            progress=progress,
            env=env,
            env_params=env_params,
            index=p,
            num_programs=len(static_points),
        )
        for j, traced in enumerate(traced_points):
            points.append({**static, **traced})
            for s, seed in enumerate(seed_list):
                ret, steps = results[j * len(seed_list) + s]
                runs.append(RunResult(len(points) - 1, seed, np.asarray(ret), np.asarray(steps)))
        programs.append(info)
        states.append(state)
    return SweepResult(
        config,
        checked,
        seed_list,
        points,
        runs,
        _summarize(points, runs, bootstrap_seed),
        programs,
        states if return_states else None,
    )


def _seed_list(config: Config, seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, int | np.integer) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds={seeds!r} must be >= 1")
        seed_list = list(range(config.seed, config.seed + int(seeds)))
    else:
        seed_list = [int(s) for s in seeds]
    if not seed_list or len(set(seed_list)) != len(seed_list):
        raise ValueError(f"seeds={seeds!r} must be a non-empty list of distinct integers")
    if not all(0 <= s < 2**31 for s in seed_list):
        raise ValueError(f"seeds={seeds!r} must lie in [0, 2**31)")
    return seed_list


def search(
    config: Config,
    method: str = "pbt",
    *,
    space: Sequence[str] | Mapping[str, str],
    population: int = 8,
    interval: int | None = None,
    eta: int = 3,
    quantile: float = 0.25,
    resample_prob: float = 0.25,
    window: int | None = None,
    seeds: Sequence[int] | None = None,
    search_seed: int = 0,
    devices: Sequence[Any] | None = None,
    **kwargs: Any,
):
    """Search the traced hyperparameters in compiled programs: PBT or successive halving.

    ``method="pbt"``: ``population`` members trained together, an exploit/explore
    step every ``interval`` updates inside the program (:func:`jaxpg.search.pbt`).
    ``method="halving"``: ``population`` configurations, the best ``1/eta`` kept
    and continued at each rung, one compiled program per rung
    (:func:`jaxpg.search.halving`). ``method="optuna"``: ask ``population``
    trials, train them vmapped, tell them, for ``rounds`` rounds.

    Args:
      config: base configuration (its budget is each member's, or the last
        rung's survivors').
      method: ``"pbt"``, ``"halving"`` or ``"optuna"`` (batched Optuna,
        :func:`jaxpg.tuner.optuna_search`: ``population`` trials per round; pass
        ``rounds=`` and ``storage=``).
      space: ``["lr=loguniform:1e-4:1e-2", ...]`` or ``{"lr": "loguniform:..."}``
        (:func:`jaxpg.space.check_space`).
      population: PBT members, or halving's configurations.
      interval: PBT: updates per generation (default
        :func:`jaxpg.search.default_interval`: about a quarter of the run's updates).
      eta: halving: keep the best ``1/eta`` per rung.
      quantile: PBT: the bottom share replaced (and top share copied) per step.
      resample_prob: PBT: probability that an explored value is redrawn.
      window: updates scored at the end of a generation or rung (default its last half).
      seeds: one seed per member (default ``config.seed …``).
      search_seed: seed of the draws and of every exploit/explore step.
      devices: devices to shard the members over (default all).
      **kwargs: passed on (``generations_per_call``, ``resume``,
        ``on_generations`` for PBT; ``on_rung`` for halving).

    Returns:
      :class:`jaxpg.search.PBTResult` or :class:`jaxpg.search.HalvingResult`.

    Raises:
      ValueError: a bad method, space or option, before compiling.

    Example:
      >>> cfg = Config(num_envs=2, num_steps=8, total_timesteps=64, num_minibatches=2)
      >>> res = search(cfg, "pbt", space=["lr=loguniform:1e-4:1e-2"], population=2, interval=2)
      >>> res.parent.shape  # [members, generations]
      (2, 2)
    """
    from jaxpg import search as search_mod
    from jaxpg.space import check_space

    checked = check_space(config, space)
    if method == "pbt":
        num_updates = make_runspec(config).num_updates
        opts = search_mod.PBTOptions(
            population=population,
            interval=interval if interval is not None else search_mod.default_interval(num_updates),
            quantile=quantile,
            resample_prob=resample_prob,
            window=window,
        )
        return search_mod.pbt(
            config, checked, opts, seeds=seeds, search_seed=search_seed, devices=devices, **kwargs
        )
    if method == "halving":
        return search_mod.halving(
            config, checked, population, eta=eta, seeds=seeds, search_seed=search_seed,
            window=window, devices=devices, **kwargs,
        )  # fmt: skip
    if method == "optuna":
        from jaxpg.tuner import optuna_search

        return optuna_search(config, checked, batch=population, **kwargs)
    raise ValueError(f"search method={method!r}; allowed: 'pbt', 'halving', 'optuna'")
