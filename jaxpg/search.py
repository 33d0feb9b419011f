"""Searches inside the compiled program: population-based training and successive halving.

Both are the sweep's vmapped scan of updates (:func:`jaxpg.loop.scan_updates`
under ``jax.vmap`` over members, as in :func:`jaxpg.sweep.make_batched_train`)
with something between its pieces; neither copies the loop.

**PBT** (:func:`make_pbt`). A population of ``P`` members, member ``i`` trained
from ``jax.random.key(seeds[i])`` with its own traced :class:`HParams`. One
*generation* is ``K`` updates of every member; a ``lax.scan`` over generations
runs, after each but the last, an exploit/explore step (:func:`exploit_explore`):

1. score each member by the mean episode return of its last ``window`` updates
   (NaN, no episode finished, ranks last);
2. rank best first (ties: lower member index first); the bottom
   ``n = max(1, floor(quantile · P))`` members each copy a member drawn
   uniformly from the top ``n``: its parameters, optimizer state and
   normalisation statistics (observation statistics and the reward
   statistics, not the per-env running returns); each member keeps its own
   environments, PRNG key and counters;
3. the copied members explore (:func:`jaxpg.space.perturb`): each searched value
   is resampled from its prior or perturbed within its bounds.

The whole lineage (scores, who copied whom, the hyperparameters of every
generation) is an output of the program. Everything random comes from
``jax.random.fold_in(jax.random.key(search_seed), generation)``, so a search is
deterministic from its seed, and a program over ``G`` generations equals the
same program called on consecutive pieces of them (checkpoint and resume).

**Successive halving** (:func:`halving`). ``N`` configurations drawn from the
space, one seed each; rung ``k`` continues the ``max(1, N // η^k)`` best of
rung ``k − 1`` from their state until they reach ``U // η^(R−1−k)`` updates
(``U`` the config's updates, ``R`` the rungs), so the survivors of the last
rung have trained exactly the config's budget. Each rung is one compiled
program (its member count and length differ), so a search with ``R`` rungs
compiles ``R`` rung programs plus the initialisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpg import compiling, sharding
from jaxpg.config import Config, HParams
from jaxpg.loop import scan_updates
from jaxpg.runspec import RunSpec, TrainState, init_state, make_runspec
from jaxpg.space import Space, perturb, sample


class PBTOptions(NamedTuple):
    """How PBT exploits and explores."""

    population: int  # P members
    interval: int  # K updates per generation
    quantile: float = 0.25  # the bottom (and top) share of the population
    resample_prob: float = 0.25
    factors: tuple[float, float] = (0.8, 1.2)
    window: int | None = None  # updates scored; None: the last half of a generation
    exploit: bool = True  # False: the same population and program without the step (a baseline)


class Generation(NamedTuple):
    """What one generation records, every leaf member-major ``[P, ...]``."""

    episode_return: jax.Array  # [P, K]
    env_steps: jax.Array  # [P, K]
    hparams: HParams  # [P] values trained with in this generation
    score: jax.Array  # [P] the ranking score after it
    parent: jax.Array  # [P] int32 member copied after it (itself where none)
    copied: jax.Array  # [P] bool


def default_interval(num_updates: int) -> int:
    """The largest divisor of ``num_updates`` that is at most a quarter of it (at least 1).

    Example:
      >>> default_interval(40), default_interval(10), default_interval(3)
      (10, 2, 1)
    """
    k = max(1, num_updates // 4)
    while num_updates % k:
        k -= 1
    return k


def cut_size(population: int, quantile: float) -> int:
    """Members replaced per exploit step: ``max(1, floor(quantile · P))``, 0 for P < 2.

    Example:
      >>> cut_size(16, 0.25), cut_size(3, 0.25), cut_size(1, 0.25)
      (4, 1, 0)
    """
    return 0 if population < 2 else max(1, int(math.floor(quantile * population)))


def window_score(episode_return: jax.Array, window: int) -> jax.Array:
    """Mean of each member's last ``window`` per-update returns, NaNs left out; −inf if none.

    Args:
      episode_return: ``[P, K]``.
      window: updates to average, ``1 <= window <= K``.

    Returns:
      ``[P]`` float32.
    """
    tail = episode_return[:, episode_return.shape[1] - window :]
    finite = jnp.isfinite(tail)
    total = jnp.sum(jnp.where(finite, tail, 0.0), axis=1)
    count = jnp.sum(finite, axis=1)
    return jnp.where(count > 0, total / jnp.maximum(count, 1), -jnp.inf)


def exploit_explore(
    key: jax.Array, score: jax.Array, hp: HParams, space: Space, opts: PBTOptions
) -> tuple[jax.Array, jax.Array, HParams]:
    """Choose who copies whom and the copies' new hyperparameters (traceable).

    Args:
      key: PRNG key.
      score: ``[P]`` scores (higher is better; NaN ranks last).
      hp: ``[P]`` hyperparameters.
      space: the searched dimensions.
      opts: the quantile, perturbation factors and resampling probability.

    Returns:
      ``(parent [P] int32, copied [P] bool, hp [P])``: member ``i`` takes the
      state of ``parent[i]`` (``i`` itself when not copied); a copied member's
      hyperparameters are its parent's, explored.
    """
    n = score.shape[0]
    cut = cut_size(n, opts.quantile)
    members = jnp.arange(n, dtype=jnp.int32)
    if cut == 0:
        return members, jnp.zeros(n, bool), hp
    s = jnp.where(jnp.isnan(score), -jnp.inf, score)
    order = jnp.argsort(-s, stable=True).astype(jnp.int32)  # best first
    rank = jnp.zeros(n, jnp.int32).at[order].set(members)
    copied = rank >= n - cut
    k_pick, k_explore = jax.random.split(key)
    donor = order[jax.random.randint(k_pick, (n,), 0, cut)]
    parent = jnp.where(copied, donor, members)
    inherited = jax.tree.map(lambda x: x[parent], hp)
    explored = perturb(
        k_explore, inherited, space, factors=opts.factors, resample_prob=opts.resample_prob
    )
    new = jax.tree.map(lambda a, b: jnp.where(copied, a, b), explored, hp)
    return parent, copied, new


def copy_members(states: TrainState, parent: jax.Array) -> TrainState:
    """Member ``i`` takes ``parent[i]``'s parameters, optimizer state and normalisation stats.

    Environments, keys, counters and each env's running discounted return stay.

    Args:
      states: ``[P]`` stacked train states.
      parent: ``[P]`` int32.

    Returns:
      ``[P]`` train states.
    """
    take = lambda tree: jax.tree.map(lambda x: x[parent], tree)  # noqa: E731
    reward_norm = states.reward_norm
    if reward_norm is not None:
        reward_norm = reward_norm.replace(stats=take(reward_norm.stats))
    return states.replace(
        params=take(states.params),
        opt_state=take(states.opt_state),
        obs_norm=take(states.obs_norm),
        reward_norm=reward_norm,
    )


def _train_members(run: RunSpec, length: int):
    """``vmap`` over members of ``length`` updates: the sweep's loop."""

    def one(state, hp):
        out = scan_updates(run, state, hp, length)
        return out.state, out.metrics["episode_return"], out.metrics["env_steps"]

    return jax.vmap(one)


def _generation(run, space, opts, window, num_generations, carry, gen):
    states, hp, search_key = carry
    states, ret, steps = _train_members(run, opts.interval)(states, hp)
    score = window_score(ret, window)
    n = score.shape[0]
    if not opts.exploit:
        nobody = jnp.arange(n, dtype=jnp.int32)
        return (states, hp, search_key), Generation(
            ret, steps, hp, score, nobody, jnp.zeros(n, bool)
        )
    key = jax.random.fold_in(search_key, gen)
    parent, copied, new_hp = exploit_explore(key, score, hp, space, opts)
    last = gen >= num_generations - 1  # no exploit after the last generation
    parent = jnp.where(last, jnp.arange(n, dtype=jnp.int32), parent)
    copied = copied & ~last
    new_hp = jax.tree.map(lambda a, b: jnp.where(last, b, a), new_hp, hp)
    states = copy_members(states, parent)
    return (states, new_hp, search_key), Generation(ret, steps, hp, score, parent, copied)


class PBTProgram(NamedTuple):
    """The compiled pieces of one PBT search (:func:`make_pbt`)."""

    run: RunSpec
    space: Space
    opts: PBTOptions
    num_generations: int
    init: Callable  # (seeds [P] int32, search_seed int32) -> (states, hp)
    generations: Callable  # (states, hp, search_seed, gens [G'] int32) -> (states, hp, Generation)


def make_pbt(
    config: Config, space: Space, opts: PBTOptions, env: Any = None, env_params: Any = None
) -> PBTProgram:
    """Build (not compile) the PBT program of ``config`` (see the module docstring).

    ``generations(states, hp, search_seed, gens)`` runs the generations listed
    in ``gens`` (consecutive, 0-based) in one ``lax.scan``; its :class:`Generation`
    leaves are ``[P, G', ...]`` (member-major, so the whole output shards over
    members).

    Args:
      config: the static configuration every member shares.
      space: the checked search space.
      opts: :class:`PBTOptions`.
      env: optional environment instance (or id) overriding ``config.env``.
      env_params: optional params for ``env``.

    Returns:
      :class:`PBTProgram`.

    Raises:
      ValueError: the interval does not divide the run's updates, or the window
        is out of range.
    """
    run = make_runspec(config, env, env_params)
    if opts.population < 1:
        raise ValueError(f"population={opts.population} must be >= 1")
    if not (1 <= opts.interval <= run.num_updates) or run.num_updates % opts.interval:
        raise ValueError(
            f"interval={opts.interval} must divide the run's {run.num_updates} updates "
            f"(total_timesteps // (num_envs * num_steps))"
        )
    if not 0.0 < opts.quantile <= 0.5:
        raise ValueError(f"quantile={opts.quantile} must lie in (0, 0.5]")
    if not 0.0 <= opts.resample_prob <= 1.0:
        raise ValueError(f"resample_prob={opts.resample_prob} must lie in [0, 1]")
    window = opts.window if opts.window is not None else max(1, opts.interval // 2)
    if not 1 <= window <= opts.interval:
        raise ValueError(f"window={opts.window} must lie in [1, interval={opts.interval}]")
    num_generations = run.num_updates // opts.interval

    def init(seeds, search_seed):
        states = jax.lax.map(lambda s: init_state(run, jax.random.key(s)), seeds)
        key = jax.random.fold_in(jax.random.key(search_seed), -1 & 0x7FFFFFFF)
        return states, sample(key, space, config, seeds.shape[0])

    def generations(states, hp, search_seed, gens):
        body = lambda c, g: _generation(run, space, opts, window, num_generations, c, g)  # noqa: E731
        carry = (states, hp, jax.random.key(search_seed))
        (states, hp, _), rec = jax.lax.scan(body, carry, gens)
        rec = jax.tree.map(lambda x: jnp.moveaxis(x, 0, 1), rec)  # [G', P, ...] -> [P, G', ...]
        return states, hp, rec

    return PBTProgram(run, space, opts, num_generations, init, generations)


def compile_pbt(program: PBTProgram, mesh, generations_per_call: int):
    """Compile ``init`` and ``generations`` for the population sharded over ``mesh``.

    Returns:
      ``(init, generations)`` compiled; ``P`` must be a multiple of the mesh size.
    """
    shard = sharding.run_sharding(mesh)
    repl = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    p = program.opts.population
    seeds = jax.ShapeDtypeStruct((p,), jnp.int32, sharding=shard)
    scalar = jax.ShapeDtypeStruct((), jnp.int32, sharding=repl)
    init = compiling.jit(program.init, out_shardings=shard).lower(seeds, scalar).compile()
    states, hp = jax.eval_shape(program.init, seeds, scalar)
    put = lambda t: jax.tree.map(  # noqa: E731
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=shard), t
    )
    gens = jax.ShapeDtypeStruct((generations_per_call,), jnp.int32, sharding=repl)
    step = (
        compiling.jit(program.generations, out_shardings=shard)
        .lower(put(states), put(hp), scalar, gens)
        .compile()
    )
    return init, step


class PBTResult(NamedTuple):
    """A finished PBT search, host arrays, member-major."""

    config: Config
    space: Space
    opts: PBTOptions
    seeds: list[int]
    search_seed: int
    episode_return: np.ndarray  # [P, U]
    env_steps: np.ndarray  # [P, U]
    hparams: HParams  # [P, G] the values of each generation
    score: np.ndarray  # [P, G]
    parent: np.ndarray  # [P, G] int32, after each generation
    copied: np.ndarray  # [P, G] bool
    state: Any  # final stacked TrainState [P, ...] (host)

    @property
    def best(self) -> int:
        """The member with the best score after the last generation (ties: lowest index)."""
        s = np.where(np.isnan(self.score[:, -1]), -np.inf, self.score[:, -1])
        return int(np.argmax(s))

    def best_hparams(self) -> dict:
        """The best member's searched values in the last generation."""
        return {f: float(getattr(self.hparams, f)[self.best, -1]) for f in self.space.fields}


def _host(tree):
    return jax.tree.map(np.asarray, sharding.fetch(tree))


def pbt(
    config: Config,
    space: Space,
    opts: PBTOptions,
    *,
    seeds: Sequence[int] | None = None,
    search_seed: int = 0,
    devices: Sequence[Any] | None = None,
    generations_per_call: int | None = None,
    resume: tuple | None = None,
    on_generations: Callable | None = None,
) -> PBTResult:
    """Run a PBT search (module docstring); the library entry is :func:`jaxpg.sweep.search`.

    Args:
      config: base configuration (``seed`` gives the default member seeds).
      space: checked search space.
      opts: :class:`PBTOptions`.
      seeds: ``[P]`` member seeds (default ``config.seed … config.seed + P − 1``).
      search_seed: seed of the initial draws and every exploit/explore step.
      devices: devices to shard the population over (default all; ``P`` must
        be a multiple of their count).
      generations_per_call: generations per compiled call (must divide the
        generation count; default all of them: the whole search is one call).
      resume: ``(done_generations, states, hp, records)`` from
        ``on_generations`` to continue from.
      on_generations: ``on_generations(done, states, hp, records)`` after each
        call, ``records`` the :class:`Generation` pieces so far (host arrays).

    Returns:
      :class:`PBTResult`.
    """
    program = make_pbt(config, space, opts)
    p = opts.population
    seed_list = list(range(config.seed, config.seed + p)) if seeds is None else list(seeds)
    if len(seed_list) != p:
        raise ValueError(f"seeds: {len(seed_list)} given for a population of {p}")
    g_total = program.num_generations
    per_call = g_total if generations_per_call is None else generations_per_call
    if per_call < 1 or g_total % per_call:
        raise ValueError(f"generations_per_call={per_call} must divide the {g_total} generations")
    mesh = sharding.run_mesh(devices)
    if p % mesh.devices.size:
        raise ValueError(
            f"population={p} must be a multiple of the device count {mesh.devices.size}"
        )
    init, step = compile_pbt(program, mesh, per_call)
    shard = sharding.run_sharding(mesh)
    if resume is None:
        done, records = 0, []
        states, hp = init(
            sharding.put_runs(np.asarray(seed_list, np.int32), shard), np.int32(search_seed)
        )
    else:
        done, states, hp, records = resume
        states = _to_keys(jax.tree.map(lambda x: sharding.put_runs(x, shard), states))
        hp = jax.tree.map(lambda x: sharding.put_runs(x, shard), hp)
        records = list(records)
    while done < g_total:
        gens = np.arange(done, done + per_call, dtype=np.int32)
        states, hp, rec = step(states, hp, np.int32(search_seed), gens)
        records.append(_host(rec))
        done += per_call
        if on_generations is not None:
            on_generations(done, _host(_from_keys(states)), _host(hp), records)
    rec = jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *records)
    p_ = rec.episode_return.shape[0]
    return PBTResult(
        config,
        space,
        opts,
        seed_list,
        search_seed,
        rec.episode_return.reshape(p_, -1),
        rec.env_steps.reshape(p_, -1),
        rec.hparams,
        rec.score,
        rec.parent,
        rec.copied,
        _host(_from_keys(states)),
    )


def _from_keys(states):
    """PRNG key leaves as their raw uint32 data (for saving)."""
    return jax.tree.map(
        lambda x: (
            jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x
        ),
        states,
    )


def _to_keys(states):
    """Inverse of :func:`_from_keys` for a ``TrainState``: its ``key`` wrapped again."""
    return states.replace(key=jax.random.wrap_key_data(states.key))


# -- successive halving ------------------------------------------------------------
class Rung(NamedTuple):
    """One rung of successive halving (host arrays, over the rung's members)."""

    members: np.ndarray  # [n] configuration indices trained in this rung
    updates: int  # cumulative updates reached
    episode_return: np.ndarray  # [n, L] this rung's updates
    env_steps: np.ndarray  # [n, L]
    score: np.ndarray  # [n]
    compile_s: float
    run_s: float


class HalvingResult(NamedTuple):
    config: Config
    space: Space
    eta: int
    seeds: list[int]  # one per configuration
    hparams: HParams  # [N] each configuration's values
    rungs: list[Rung]

    @property
    def best(self) -> int:
        last = self.rungs[-1]
        s = np.where(np.isnan(last.score), -np.inf, last.score)
        return int(last.members[int(np.argmax(s))])

    def best_hparams(self) -> dict:
        return {f: float(getattr(self.hparams, f)[self.best]) for f in self.space.fields}


def rung_plan(num_configs: int, eta: int, num_updates: int) -> list[tuple[int, int]]:
    """``[(members, cumulative updates)]`` per rung.

    Example:
      >>> rung_plan(9, 3, 90)  # 9 for 10 updates, 3 until 30, 1 until 90
      [(9, 10), (3, 30), (1, 90)]
    """
    if eta < 2:
        raise ValueError(f"eta={eta} must be an integer >= 2")
    if num_configs < 1:
        raise ValueError(f"num_configs={num_configs} must be >= 1")
    rungs = int(math.floor(math.log(num_configs, eta) + 1e-9)) + 1
    plan = [
        (max(1, num_configs // eta**k), num_updates // eta ** (rungs - 1 - k)) for k in range(rungs)
    ]
    if plan[0][1] < 1:
        raise ValueError(
            f"successive halving: {rungs} rungs with eta={eta} need at least "
            f"{eta ** (rungs - 1)} updates; the config has {num_updates}"
        )
    return plan


def halving(
    config: Config,
    space: Space,
    num_configs: int,
    *,
    eta: int = 3,
    seeds: Sequence[int] | None = None,
    search_seed: int = 0,
    window: int | None = None,
    devices: Sequence[Any] | None = None,
    on_rung: Callable[[Rung], None] | None = None,
) -> HalvingResult:
    """Successive halving over ``num_configs`` draws from ``space`` (module docstring).

    Args:
      config: base configuration; its budget is what the last rung's survivors train.
      space: checked search space.
      num_configs: N configurations, one seed each.
      eta: keep the best ``1/eta`` at each rung.
      seeds: ``[N]`` seeds (default ``config.seed …``).
      search_seed: seed of the configurations' draw.
      window: updates scored at the end of a rung (default the rung's last half).
      devices: devices to shard each rung's members over.
      on_rung: called with each finished :class:`Rung`.

    Returns:
      :class:`HalvingResult`.
    """
    import time

    run = make_runspec(config)
    plan = rung_plan(num_configs, eta, run.num_updates)
    seed_list = (
        list(range(config.seed, config.seed + num_configs)) if seeds is None else list(seeds)
    )
    if len(seed_list) != num_configs:
        raise ValueError(f"seeds: {len(seed_list)} given for {num_configs} configurations")
    mesh = sharding.run_mesh(devices)
    d = mesh.devices.size
    shard = sharding.run_sharding(mesh)
    hp_all = _host(sample(jax.random.key(search_seed), space, config, num_configs))

    def init(seeds_):
        return jax.lax.map(lambda s: init_state(run, jax.random.key(s)), seeds_)

    padded = sharding.round_up(num_configs, d)
    ids = np.arange(num_configs)
    seeds_in = np.asarray(seed_list, np.int32)[
        np.concatenate([ids, np.zeros(padded - num_configs, int)])
    ]
    states = compiling.jit(init, out_shardings=shard)(sharding.put_runs(seeds_in, shard))
    states = _host(_from_keys(states))
    members, done_updates, rungs = ids, 0, []
    for k, (_, reach) in enumerate(plan):
        length = reach - done_updates
        w = max(1, length // 2) if window is None else min(window, length)
        size = sharding.round_up(len(members), d)
        pick = np.concatenate([np.arange(len(members)), np.zeros(size - len(members), int)])
        st = _to_keys(jax.tree.map(lambda x, pick=pick: sharding.put_runs(x[pick], shard), states))
        hp = HParams(*(sharding.put_runs(x[members][pick], shard) for x in hp_all))
        fn = compiling.jit(_train_members(run, length), out_shardings=shard)
        t0 = time.perf_counter()
        compiled = fn.lower(st, hp).compile()
        t1 = time.perf_counter()
        st, ret, steps = compiled(st, hp)
        ret, steps = _host(ret)[: len(members)], _host(steps)[: len(members)]
        t2 = time.perf_counter()
        score = np.asarray(window_score(jnp.asarray(ret), w))
        rung = Rung(members, reach, ret, steps, score, t1 - t0, t2 - t1)
        rungs.append(rung)
        if on_rung is not None:
            on_rung(rung)
        done_updates = reach
        if k + 1 < len(plan):
            keep = plan[k + 1][0]
            s = np.where(np.isnan(score), -np.inf, score)
            order = np.argsort(-s, kind="stable")[:keep]
            states = jax.tree.map(lambda x, o=order: x[o], _host(_from_keys(st)))
            members = members[order]
    return HalvingResult(config, space, eta, seed_list, hp_all, rungs)
