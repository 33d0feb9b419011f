"""Searches: the space's checks, PBT's exploit/explore step on a constructed population,
the PBT program (deterministic, piecewise equal to whole, 2 devices equal to 1), and
successive halving's rungs.

Compiles cost seconds here, so the programs are tiny (2 envs × 16 steps) and one
module-scoped PBT search serves several tests.
"""

import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpg
from jaxpg import search
from jaxpg import space as sp
from jaxpg.runspec import init_state, make_runspec

jaxpg_sweep = __import__("jaxpg.sweep", fromlist=["load"])

ROOT = pathlib.Path(__file__).resolve().parents[1]
# 32 steps per update, 8 updates: 4 generations of 2 updates.
TINY = jaxpg.Config(num_envs=2, num_steps=16, total_timesteps=256, num_minibatches=2)
SPACE = ["lr=loguniform:1e-4:1e-2", "ent_coef=uniform:0:0.02", "lam=choice:0.9,0.95,0.99"]


# -- the space ------------------------------------------------------------------
@pytest.mark.parametrize(
    "dims, match",
    [
        (["lr=normal:0:1"], "expected FIELD=loguniform"),
        (["lr=loguniform:1e-2"], "cannot read the numbers"),
        (["num_envs=choice:2,4"], "num_envs is static"),
        (["bogus=uniform:0:1"], "unknown grid field 'bogus'"),
        (["lr=loguniform:0:1e-2"], "loguniform needs LOW > 0"),
        (["lr=uniform:1e-2:1e-4"], "needs finite LOW < HIGH"),
        (["gamma=uniform:0.9:1.5"], "Config.gamma=1.5 is invalid"),
        (["lam=choice:0.9"], "two or more distinct choices"),
        (["lr=uniform:1e-4:1e-3", "learning_rate=uniform:1e-4:1e-3"], "lr given twice"),
        ([], "empty"),
    ],
)
def test_space_errors_are_one_line(dims, match):
    with pytest.raises(ValueError, match=match) as info:
        sp.check_space(TINY, dims)
    assert "\n" not in str(info.value)


def test_space_forms_and_sampling_bounds():
    s = sp.check_space(TINY, {"learning_rate": "loguniform:1e-4:1e-2", "lam": "choice:0.9,0.99"})
    assert s.fields == ("lr", "lam") and sp.parse_dim(s.texts()[0]) == s.dims[0]
    hp = sp.sample(jax.random.key(0), s, TINY, 2000)
    lr = np.asarray(hp.lr)
    assert lr.min() >= 1e-4 and lr.max() <= 1e-2
    # log-uniform: the median is near the geometric mean 1e-3 (±10% at n = 2000)
    assert 0.9e-3 < np.median(lr) < 1.1e-3
    np.testing.assert_array_equal(np.unique(np.asarray(hp.lam)), np.float32([0.9, 0.99]))
    np.testing.assert_array_equal(np.asarray(hp.gamma), np.float32(TINY.gamma))


def test_perturb_multiplies_by_a_factor_or_moves_to_a_neighbour():
    s = sp.check_space(TINY, ["lr=uniform:1e-4:1e-2", "lam=choice:0.9,0.95,0.99"])
    hp = TINY.hparams(lr=[1e-3, 1e-2, 1e-4, 5e-3], lam=[0.9, 0.95, 0.99, 0.95])
    out = sp.perturb(jax.random.key(1), hp, s, resample_prob=0.0)
    lr, lam = np.asarray(out.lr), np.asarray(out.lam)
    for before, after in zip(np.asarray(hp.lr), lr, strict=True):
        cands = np.clip(np.float32(before) * np.float32([0.8, 1.2]), 1e-4, 1e-2)
        assert np.any(np.isclose(after, cands, rtol=1e-6))
    neighbours = {90: {90, 95}, 95: {90, 99}, 99: {95, 99}}  # in hundredths
    before = np.rint(np.asarray(hp.lam) * 100).astype(int).tolist()
    for b, a in zip(before, np.rint(lam * 100).astype(int).tolist(), strict=True):
        assert a in neighbours[b]
    fresh = sp.perturb(jax.random.key(2), TINY.hparams(lr=np.full(500, 1e-2)), s, resample_prob=1.0)
    assert np.asarray(fresh.lr).min() >= 1e-4 and np.asarray(fresh.lr).max() <= 1e-2
    assert np.unique(np.asarray(fresh.lr)).size > 400  # drawn afresh, not 0.8/1.2 × 1e-2


# -- the exploit/explore step ---------------------------------------------------------
OPTS = search.PBTOptions(population=8, interval=2, quantile=0.25, resample_prob=0.0)
SCORES = np.array([5.0, np.nan, 1.0, 3.0, 9.0, 2.0, 7.0, 0.0], np.float32)


@pytest.mark.parametrize("jit", [False, True])
def test_bottom_quantile_copies_top_members(jit):
    # Best first: 9 (member 4), 7 (6), 5 (0), 3 (3), 2 (5), 1 (2), 0 (7), NaN (1).
    # cut = floor(0.25 * 8) = 2: members 7 and 1 copy one of the top two, 4 or 6.
    s = sp.check_space(TINY, ["lr=loguniform:1e-4:1e-2"])
    hp = TINY.hparams(lr=np.linspace(1e-4, 8e-4, 8))
    fn = search.exploit_explore
    if jit:
        fn = jax.jit(fn, static_argnums=(3, 4))
    for k in range(10):
        parent, copied, new = fn(jax.random.key(k), jnp.asarray(SCORES), hp, s, OPTS)
        parent, copied = np.asarray(parent), np.asarray(copied)
        assert copied.tolist() == [i in (1, 7) for i in range(8)]
        assert set(parent[[1, 7]].tolist()) <= {4, 6}
        keep = [0, 2, 3, 4, 5, 6]
        np.testing.assert_array_equal(parent[keep], keep)
        np.testing.assert_array_equal(np.asarray(new.lr)[keep], np.asarray(hp.lr)[keep])
        for i in (1, 7):  # the parent's value times 0.8 or 1.2 (resample_prob 0)
            base = np.float32(np.asarray(hp.lr)[parent[i]])
            assert np.isclose(np.asarray(new.lr)[i], base * np.float32([0.8, 1.2])).any()


def test_exploit_explore_is_the_same_under_vmap():
    s = sp.check_space(TINY, ["lr=loguniform:1e-4:1e-2"])
    hp = TINY.hparams(lr=np.linspace(1e-4, 8e-4, 8))
    keys = jax.random.split(jax.random.key(0), 3)
    scores = jnp.stack([jnp.asarray(SCORES), -jnp.asarray(SCORES), jnp.arange(8.0)])
    batched = jax.vmap(lambda k, sc: search.exploit_explore(k, sc, hp, s, OPTS))(keys, scores)
    for b in range(3):
        one = search.exploit_explore(keys[b], scores[b], hp, s, OPTS)
        for x, y in zip(jax.tree.leaves(one), jax.tree.leaves(batched), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y)[b])


def test_copy_members_takes_params_and_optimizer_keeps_envs_and_keys():
    run = make_runspec(TINY.replace(normalize_obs=True))
    states = jax.lax.map(lambda s: init_state(run, jax.random.key(s)), jnp.arange(4))
    states = states.replace(obs_norm=states.obs_norm.replace(count=jnp.arange(4.0)))
    out = search.copy_members(states, jnp.asarray([0, 1, 0, 1], jnp.int32))
    for src, dst in ((0, 2), (1, 3)):
        for a in jax.tree.leaves((out.params, out.opt_state, out.obs_norm)):
            np.testing.assert_array_equal(a[dst], a[src])
    np.testing.assert_array_equal(np.asarray(out.obs_norm.count), [0, 1, 0, 1])
    np.testing.assert_array_equal(jax.random.key_data(out.key), jax.random.key_data(states.key))
    for a, b in zip(jax.tree.leaves(out.env), jax.tree.leaves(states.env), strict=True):
        np.testing.assert_array_equal(a, b)


def test_cut_size_and_window_score():
    assert [search.cut_size(p, 0.25) for p in (1, 2, 4, 8, 16)] == [0, 1, 1, 2, 4]
    ret = jnp.asarray([[1.0, 2.0, 4.0], [np.nan, np.nan, np.nan], [5.0, np.nan, 3.0]])
    np.testing.assert_array_equal(search.window_score(ret, 2), [3.0, -np.inf, 3.0])


# -- the PBT program --------------------------------------------------------------
PBT_OPTS = search.PBTOptions(population=4, interval=2, resample_prob=0.0)


@pytest.fixture(scope="module")
def pbt_run():
    s = sp.check_space(TINY, SPACE)
    pieces = []
    whole = search.pbt(TINY, s, PBT_OPTS, search_seed=7)
    piecewise = search.pbt(
        TINY, s, PBT_OPTS, search_seed=7, generations_per_call=1,
        on_generations=lambda done, st, hp, rec: pieces.append((done, st, hp, list(rec))),
    )  # fmt: skip
    return s, whole, piecewise, pieces


def test_pbt_lineage_is_consistent(pbt_run):
    s, r, _, _ = pbt_run
    p, g = r.parent.shape
    assert (p, g) == (4, 4) and r.episode_return.shape == (4, 8)
    assert not r.copied[:, -1].any()  # no exploit after the last generation
    assert r.copied[:, :-1].sum(axis=0).tolist() == [1, 1, 1]  # cut_size(4) = 1
    for gen in range(g - 1):
        for i in range(p):
            j = r.parent[i, gen]
            before, after = r.hparams.lr[j, gen], r.hparams.lr[i, gen + 1]
            if r.copied[i, gen]:
                assert r.score[j, gen] == np.max(r.score[:, gen])  # top 1 of 4
                assert r.score[i, gen] == np.min(r.score[:, gen])
                cands = np.clip(before * np.float32([0.8, 1.2]), 1e-4, 1e-2)
                assert np.isclose(after, cands).any()
            else:
                assert j == i and after == before
        for d in s.dims:
            v = getattr(r.hparams, d.field)
            if d.kind == "choice":
                hundredths = lambda x: set(np.rint(np.asarray(x) * 100).astype(int).ravel())  # noqa: E731
                assert hundredths(v) <= hundredths(d.choices)
            else:
                assert v.min() >= np.float32(d.low) and v.max() <= np.float32(d.high)


def test_pbt_is_deterministic_and_pieces_equal_the_whole(pbt_run):
    _, whole, piecewise, pieces = pbt_run
    for a, b in zip(whole, piecewise, strict=True):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(jax.tree.leaves(whole.state), jax.tree.leaves(piecewise.state), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [d for d, *_ in pieces] == [1, 2, 3, 4]


def test_pbt_resumes_from_a_saved_piece(pbt_run):
    s, whole, _, pieces = pbt_run
    done, st, hp, rec = pieces[1]
    resumed = search.pbt(
        TINY, s, PBT_OPTS, search_seed=7, generations_per_call=1, resume=(done, st, hp, rec)
    )
    np.testing.assert_array_equal(resumed.episode_return, whole.episode_return)
    np.testing.assert_array_equal(resumed.parent, whole.parent)
    for a, b in zip(jax.tree.leaves(resumed.state), jax.tree.leaves(whole.state), strict=True):
        np.testing.assert_array_equal(a, b)


_TWO_DEVICES = """
import sys, numpy as np, jax, jaxpg
from jaxpg import search, space as sp
assert jax.device_count() == 2
cfg = jaxpg.Config(**{k: v for k, v in jaxpg.Config().to_dict().items()} | dict(
    num_envs=2, num_steps=16, total_timesteps=256, num_minibatches=2))
s = sp.check_space(cfg, %r)
r = search.pbt(cfg, s, search.PBTOptions(population=4, interval=2, resample_prob=0.0),
               search_seed=7)
np.savez(sys.argv[1], ret=r.episode_return, parent=r.parent, lr=r.hparams.lr,
         params=np.concatenate([np.ravel(x) for x in jax.tree.leaves(r.state.params)]))
"""


def test_pbt_on_two_devices_equals_one_device(pbt_run, tmp_path):
    _, whole, _, _ = pbt_run
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "PYTHONPATH": str(ROOT),
        "JAX_PLATFORMS": "cpu",
    }
    out = tmp_path / "two.npz"
    done = subprocess.run(
        [sys.executable, "-c", _TWO_DEVICES % (SPACE,), str(out)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.load(out)
    np.testing.assert_array_equal(got["parent"], whole.parent)
    np.testing.assert_allclose(got["ret"], whole.episode_return, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["lr"], whole.hparams.lr, rtol=1e-6)
    params = np.concatenate([np.ravel(x) for x in jax.tree.leaves(whole.state.params)])
    np.testing.assert_allclose(got["params"], params, rtol=1e-4, atol=1e-5)


def test_pbt_rejects_bad_options_before_compiling():
    s = sp.check_space(TINY, SPACE)
    with pytest.raises(ValueError, match="interval=3 must divide the run's 8 updates"):
        search.make_pbt(TINY, s, search.PBTOptions(population=4, interval=3))
    with pytest.raises(ValueError, match="quantile"):
        search.make_pbt(TINY, s, search.PBTOptions(population=4, interval=2, quantile=0.7))


# -- successive halving ---------------------------------------------------------------
def test_rung_plan():
    # eta 3 over 27 configs: 4 rungs, 27 -> 9 -> 3 -> 1; updates 81/27 .. 81
    assert search.rung_plan(27, 3, 81) == [(27, 3), (9, 9), (3, 27), (1, 81)]
    assert search.rung_plan(4, 2, 8) == [(4, 2), (2, 4), (1, 8)]
    with pytest.raises(ValueError, match="need at least 9 updates"):
        search.rung_plan(9, 3, 4)


def _sweep_args(out, *extra):
    return [
        sys.executable, "-m", "jaxpg", "sweep", "--num-envs", "2", "--num-steps", "16",
        "--num-minibatches", "2", "--out", str(out), *extra,
    ]  # fmt: skip


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}


def test_cli_halving_keeps_the_best_and_continues_them(tmp_path):
    out = tmp_path / "halving"
    space = ["--space", SPACE[0], "--space", SPACE[2]]
    args = ["--search", "halving", *space, "--population", "4", "--eta", "2"]
    done = subprocess.run(
        _sweep_args(out, *args, "--total-timesteps", "256"),
        env=_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "halving rung 3/3" in done.stderr
    rec = json.loads((out / "search.json").read_text())
    rungs = rec["rungs"]
    assert [len(r["members"]) for r in rungs] == [4, 2, 1]
    assert [r["updates"] for r in rungs] == [2, 4, 8]
    assert rec["compilations"] == 4  # 3 rungs + the initialisation
    for prev, nxt in zip(rungs, rungs[1:], strict=False):
        score = [-np.inf if s is None else s for s in prev["score"]]
        best = [prev["members"][i] for i in np.argsort(-np.asarray(score), kind="stable")]
        assert nxt["members"] == best[: len(nxt["members"])]
    assert rec["best"] == rungs[-1]["members"][0]
    loaded = jaxpg_sweep.load(out)
    assert loaded.kind == "halving" and len(loaded.points) == 4
    best = [p for p in loaded.points if p.rank == 1][0]
    assert best.point == rec["best"] and best.values["updates"] == 8
    # continued from their state: the finalist's curve runs 8 updates to the full budget
    steps, _ = loaded.curves.of(rec["best"])
    np.testing.assert_array_equal(steps[0], np.arange(1, 9) * 32.0)
    for name in ("curves.pdf", "curves.svg", "curves.png", "best_config.json", "summary.csv"):
        assert (out / name).is_file()
    best_cfg = json.loads((out / "best_config.json").read_text())
    assert best_cfg["lr"] == pytest.approx(rec["best_hparams"]["lr"])
    assert jaxpg.Config.from_dict(best_cfg).lr == best_cfg["lr"]


# 400 updates of 32 steps, 4 generations of 100: long enough to kill one mid-search.
PBT_CLI = ["--search", "pbt", "--space", SPACE[0], "--space", SPACE[1], "--population", "4"]
PBT_CLI += ["--interval", "100", "--total-timesteps", "12800", "--quiet"]


def _search_record(out):
    rec = json.loads((out / "search.json").read_text())
    rec.pop("seconds")
    return rec


def test_cli_pbt_resume_after_sigkill_is_bitwise(tmp_path):
    import signal
    import time

    whole = tmp_path / "whole"
    done = subprocess.run(
        _sweep_args(whole, *PBT_CLI), env=_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("schedules.pdf", "schedules.svg", "schedules.png", "curves.csv"):
        assert (whole / name).is_file()

    cut = tmp_path / "cut"
    proc = subprocess.Popen(
        _sweep_args(cut, *PBT_CLI), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 600
    while not (cut / "search_state.npz").exists() and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if proc.returncode != -signal.SIGKILL:
        pytest.skip("the search finished before it could be killed")
    assert not (cut / "search.json").exists()
    again = subprocess.run(
        _sweep_args(cut, *PBT_CLI[:-1]), env=_env(), capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming pbt after generation" in again.stderr
    assert (cut / "curves.csv").read_bytes() == (whole / "curves.csv").read_bytes()
    assert (cut / "summary.csv").read_bytes() == (whole / "summary.csv").read_bytes()
    assert _search_record(cut) == _search_record(whole)
    assert (cut / "best_config.json").read_bytes() == (whole / "best_config.json").read_bytes()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--search", "pbt"], "needs a search space"),
        (["--search", "pbt", "--space", "lr=gauss:1:2"], "expected FIELD=loguniform"),
        (["--search", "pbt", "--space", "num_envs=choice:2,4"], "num_envs is static"),
        (["--search", "pbt", "--space", SPACE[0], "--grid", "lr=1e-3"], "exclude each other"),
        (["--search", "pbt", "--space", SPACE[0], "--interval", "3"], "interval=3 must divide"),
        (["--search", "halving", "--space", SPACE[0], "--population", "27"], "need at least"),
    ],
)
def test_cli_search_bad_input_is_one_line(tmp_path, capsys, extra, message):
    from jaxpg.cli import main

    args = ["sweep", "--num-envs", "2", "--num-steps", "16", "--num-minibatches", "2"]
    code = main([*args, "--total-timesteps", "256", "--out", str(tmp_path / "x"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_cli_optuna_without_the_extra_says_how_to_install(tmp_path, capsys):
    import importlib.util

    if importlib.util.find_spec("optuna") is not None:
        pytest.skip("optuna is installed here (tests/test_tuner.py runs it)")
    from jaxpg.cli import main

    args = ["sweep", "--search", "optuna", "--space", SPACE[0], "--out", str(tmp_path / "x")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert 'pip install "jaxpg[optuna]"' in err and len(err.strip().splitlines()) == 1
