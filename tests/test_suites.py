"""Suite adapters (Brax, Craftax, Jumanji, Navix): time limits are truncations with the
true final observation, true terminal states are terminations, and jaxpg trains on them.

Each suite's tests are marked ``suites`` (not in the default run: ``pytest -m suites
tests/test_suites.py``) and skipped when the suite is not installed
(``pip install "jaxpg[all]"``). Each suite compiles one rollout function (env params
and the policy's action are traced arguments), plus one tiny training run.
"""

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpg
import jaxpg.train  # noqa: F401 - loaded up front: gymnax and optax call jax.jit on import
from jaxpg import checkpoint, envs, networks, rollout, suites

ROOT = Path(__file__).resolve().parents[1]

# -- helpers ------------------------------------------------------------------


def _discrete_policy(logits, obs):
    """Logits given as the policy's params (one-hot·big: a fixed action), per env of ``obs``."""
    return jnp.broadcast_to(logits, obs.shape[:1] + logits.shape)


def _box_policy(mean, obs):
    """A Gaussian with the given mean and a negligible std: a fixed action."""
    mean = jnp.broadcast_to(mean, obs.shape[:1] + mean.shape)
    return networks.Gaussian(mean, jnp.full(mean.shape[-1:], -30.0))


def make_runner(env, env_params, num_steps, discrete=True):
    """One compiled ``run(env_params, policy_params, carry) -> Transition [T, B, ...]``."""
    spec = envs.env_spec(env, env_params)
    policy = _discrete_policy if discrete else _box_policy

    @jax.jit
    def run(params, policy_params, carry):
        _, trans = rollout.rollout_segment(
            jax.random.key(1), policy, policy_params, env, params, spec, carry, num_steps
        )
        return trans

    reset = jax.jit(functools.partial(rollout.reset_envs, env=env, num_envs=2))
    return run, lambda params: reset(jax.random.key(0), env_params=params)


def fixed(action, n):
    return jnp.zeros(n).at[action].set(50.0)


def check_truncation(short, long, limit):
    """``short`` ran with time limit ``limit``; ``long`` is the same run without it."""
    term_s, trunc_s = np.asarray(short.terminated), np.asarray(short.truncated)
    assert not np.asarray(long.done)[:limit].any(), "precondition: no episode ends early"
    assert not term_s[:limit].any()
    assert not trunc_s[: limit - 1].any() and trunc_s[limit - 1].all()
    # The final observation of the truncated step is the true s'_t: the state the
    # run without a limit reaches, not the reset observation that follows it.
    np.testing.assert_array_equal(short.final_obs[limit - 1], long.final_obs[limit - 1])
    np.testing.assert_array_equal(short.final_obs[limit - 1], long.obs[limit])
    assert not np.array_equal(short.obs[limit], short.final_obs[limit - 1])


@functools.cache
def tiny_run(env_id):
    """``(config, output)`` of a 32-step training run, compiled once per test session."""
    cfg = jaxpg.Config(env=env_id, num_envs=2, num_steps=8, total_timesteps=32, num_minibatches=2)
    return cfg, jax.jit(jaxpg.make_train(cfg))(jax.random.key(0))


def check_train(env_id):
    _, out = tiny_run(env_id)
    assert float(out.metrics["env_steps"][-1]) == 32.0
    for name in ("loss", "entropy", "grad_norm"):
        assert np.isfinite(np.asarray(out.metrics[name])).all(), name
    # Suite keys are stored raw, so checkpoints can write the env state with NumPy.
    for leaf in jax.tree.leaves(out.state.env):
        assert not jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def check_gif(path, size):
    """``path`` is a GIF of at least 2 distinct frames of ``size`` (width, height)."""
    from PIL import Image

    assert path.stat().st_size > 0
    with Image.open(path) as im:
        assert im.format == "GIF" and im.size == size and im.n_frames >= 2
        im.seek(im.n_frames - 1)  # every frame decodes
    assert not list(path.parent.glob(f".{path.name}.*"))  # no temp file left


def render_tiny_run(env_id, tmp_path):
    """Render one episode of :func:`tiny_run`'s policy; returns the GIF's path."""
    from jaxpg.render import check_supported, render_gif

    check_supported(env_id)
    cfg, out = tiny_run(env_id)
    return render_gif(cfg, out.state.params, tmp_path / "episode.gif", seed=0)


# -- suite-independent ----------------------------------------------------------


def test_config_accepts_known_suite_prefixes_without_importing_them():
    before = set(sys.modules)
    jaxpg.Config(env="brax/ant")
    jaxpg.Config(env="craftax/Craftax-Symbolic-v1")
    assert "brax" not in set(sys.modules) - before
    with pytest.raises(ValueError, match="Config.env='nosuch/x'"):
        jaxpg.Config(env="nosuch/x")


def test_missing_suite_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "navix", None)  # import navix -> ModuleNotFoundError
    monkeypatch.delitem(sys.modules, "jaxpg.suites.navix", raising=False)
    with pytest.raises(ImportError, match=r'pip install "jaxpg\[navix\]"'):
        envs.make_env("navix/Navix-Empty-5x5-v0")
    with pytest.raises(ValueError, match="allowed: 'suite/name' with suite in brax"):
        suites.make("gym/CartPole-v1")


# -- Navix ------------------------------------------------------------------------


@pytest.mark.suites
def test_navix_time_limit_truncates_and_goal_terminates():
    pytest.importorskip("navix")
    from jaxpg.suites import navix as nx_suite

    name, limit = "Navix-Empty-5x5-v0", 3
    env_s, p_s = nx_suite.make(name, max_steps=limit)
    env_l, p_l = nx_suite.make(name, max_steps=100)
    assert p_s.max_steps_in_episode == limit and env_s.observation_space(p_s).shape == (5, 5, 3)
    forward = fixed(2, env_s.num_actions)  # walks east into the wall: never reaches the goal
    run_s, reset_s = make_runner(env_s, p_s, limit + 2)
    run_l, reset_l = make_runner(env_l, p_l, limit + 2)
    short, long = run_s(p_s, forward, reset_s(p_s)), run_l(p_l, forward, reset_l(p_l))
    check_truncation(short, long, limit)
    assert short.obs.shape == (limit + 2, 2, 5, 5, 3)  # observations keep their shape
    np.testing.assert_array_equal(short.obs[limit], short.obs[0])  # Empty's reset is fixed

    # The goal (3, 3) is reached on the 5th step: a termination, also when it falls on
    # the time limit (Navix gives termination the precedence).
    env, params = nx_suite.make(name, max_steps=5)
    step = jax.jit(env.step)
    _, state = env.reset(jax.random.key(0), params)
    for t, action in enumerate([2, 2, 1, 2, 2]):
        _, state, reward, term, trunc, info = step(jax.random.key(t), state, action, params)
        assert bool(term) == (t == 4) and not bool(trunc)
    assert float(reward) > 0 and int(state.time) == 0  # auto-reset after the goal


@pytest.mark.suites
def test_navix_trains():
    pytest.importorskip("navix")
    check_train("navix/Navix-Empty-5x5-v0")


@pytest.mark.suites
def test_navix_cli_trains_resumes_bitwise_and_evaluates(tmp_path):
    pytest.importorskip("navix")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "JAX_PLATFORMS": "cpu",
        "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "cache"),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }

    def cli(*args):
        cmd = [sys.executable, "-m", "jaxpg", *map(str, args)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    ref, cut = tmp_path / "ref", tmp_path / "cut"
    cli(
        "train",
        *("--env", "navix/Navix-Empty-5x5-v0", "--num-envs", "4", "--num-steps", "16"),
        *("--total-timesteps", "512", "--num-minibatches", "2", "--hidden-sizes", "16"),
        *("--checkpoint-every", "4", "--log-every", "4", "--out", ref, "--quiet"),
    )
    shutil.copytree(ref, cut)
    (cut / "checkpoints" / checkpoint.checkpoint_name(8)).unlink()
    cli("train", "--resume", cut, "--quiet")  # from update 4
    a, _, _ = checkpoint.read(ref / "checkpoints" / checkpoint.checkpoint_name(8))
    b, _, _ = checkpoint.read(cut / "checkpoints" / checkpoint.checkpoint_name(8))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)  # params, optimizer and the Navix env state
    gif = tmp_path / "episode.gif"
    result = json.loads(cli("eval", cut, "--episodes", "4", "--json", "--gif", gif))
    assert result["update"] == 8 and 0.0 <= result["return_mean"] <= 1.0
    assert result["gif"] == str(gif)
    check_gif(gif, (160, 160))  # Navix's 5x5 cells of 8 pixels, enlarged 4 times


# -- Jumanji ----------------------------------------------------------------------


@pytest.mark.suites
def test_jumanji_time_limit_is_a_truncation_not_a_termination():
    pytest.importorskip("jumanji")
    import jumanji
    from jumanji.types import StepType

    from jaxpg.suites import jumanji as jm_suite

    limit = 3
    # Jumanji's Snake ends its own time limit as a termination (discount 0):
    raw = jumanji.make("Snake-v1", time_limit=limit)
    state, ts = raw.reset(jax.random.key(0))  # head at (2, 10): 10 free cells to the left
    for t in range(limit):
        state, ts = raw.step(state, jnp.int32(3))
        assert (ts.step_type == StepType.LAST) == (t == limit - 1)
    assert float(ts.discount) == 0.0

    env, params = jm_suite.make("Snake-v1", time_limit=limit)  # the adapter enforces 3
    assert params.max_steps_in_episode == limit and env._own_limit is None
    assert [p for p, _ in env.obs_layout] == [".grid", ".step_count", ".action_mask"]
    run, reset = make_runner(env, params, 14)
    carry = reset(params)
    right = fixed(1, env.num_actions)
    short = run(params, right, carry)
    long = run(params.replace(max_steps_in_episode=1000), right, carry)
    check_truncation(short, long, limit)
    # Moving right the snake hits the wall within 11 steps: a true termination.
    term = np.asarray(long.terminated)
    assert term.any(axis=0).all() and not np.asarray(long.truncated).any()

    # A task that keeps its own limit (as SearchAndRescue must): its LAST step at the
    # limit is reported as a truncation, not the termination Jumanji says.
    kept = jm_suite.JumanjiEnv(jumanji.make("Snake-v1", time_limit=limit), "snake", 0, limit)
    step = jax.jit(kept.step)
    _, state = kept.reset(jax.random.key(0), kept.default_params)
    for t in range(limit):
        _, state, _, term, trunc, _ = step(jax.random.key(t), state, 3, kept.default_params)
        assert not bool(term) and bool(trunc) == (t == limit - 1)


@pytest.mark.suites
def test_jumanji_refuses_multidiscrete_tasks():
    pytest.importorskip("jumanji")
    from jaxpg.suites import jumanji as jm_suite

    with pytest.raises(ValueError, match="MultiDiscrete actions are not supported"):
        jm_suite.make("Tetris-v0")


@pytest.mark.suites
def test_jumanji_trains():
    pytest.importorskip("jumanji")
    check_train("jumanji/Snake-v1")


@pytest.mark.suites
def test_jumanji_renders_a_gif(tmp_path):
    pytest.importorskip("jumanji")
    check_gif(render_tiny_run("jumanji/Snake-v1", tmp_path), (400, 400))  # the viewer, shrunk


# -- Brax -------------------------------------------------------------------------


@pytest.mark.suites
def test_brax_time_limit_truncates_and_falling_terminates():
    pytest.importorskip("brax")
    from jaxpg.suites import brax as brax_suite

    env, params = brax_suite.make("inverted_pendulum")
    assert params.max_steps_in_episode == 1000
    limit = 3
    run, reset = make_runner(env, params, 8, discrete=False)
    carry = reset(params)
    still, push = jnp.zeros(1), jnp.ones(1)
    short = run(params.replace(max_steps_in_episode=limit), still, carry)
    long = run(params, still, carry)
    check_truncation(short, long, limit)
    # Pushing the cart one way tips the pole over (|angle| > 0.2): Brax's done.
    fall = run(params, push, carry)
    t_end = int(np.argmax(np.asarray(fall.terminated)[:, 0]))
    assert fall.terminated[t_end].all() and not np.asarray(fall.truncated).any()
    assert abs(float(fall.final_obs[t_end, 0, 1])) > 0.2  # the true final angle
    # A fall on the time limit's step is a termination only.
    both = run(params.replace(max_steps_in_episode=t_end + 1), push, carry)
    assert both.terminated[t_end].all() and not np.asarray(both.truncated)[t_end].any()


@pytest.mark.suites
def test_brax_trains():
    pytest.importorskip("brax")
    check_train("brax/inverted_pendulum")


@pytest.mark.suites
def test_brax_renders_a_gif(tmp_path):
    pytest.importorskip("brax")
    try:
        from jaxpg.render import check_supported

        check_supported("brax/inverted_pendulum")
    except ValueError as exc:  # the refusal is tested below
        pytest.skip(str(exc))
    check_gif(render_tiny_run("brax/inverted_pendulum", tmp_path), (320, 240))


@pytest.mark.suites
def test_brax_gif_without_opengl_is_one_line_before_loading(tmp_path, monkeypatch, capsys):
    pytest.importorskip("brax")
    suites.load("brax")  # picks MuJoCo's headless GL backend before MuJoCo is imported
    import mujoco

    from jaxpg import run as runlib
    from jaxpg import rundir
    from jaxpg.cli import main

    def no_gl(*args, **kwargs):
        raise mujoco.FatalError("an OpenGL platform library has not been loaded\nmore")

    def never(*args, **kwargs):
        raise AssertionError("the checkpoint was loaded")

    monkeypatch.setattr(mujoco, "Renderer", no_gl)
    monkeypatch.setattr(runlib, "load_policy", never)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cfg = jaxpg.Config(env="brax/inverted_pendulum")
    record = {"config": cfg.to_dict(), **rundir.identity("train", cfg.to_dict())}
    (run_dir / runlib.CONFIG_JSON).write_text(json.dumps(record))
    assert main(["eval", str(run_dir), "--gif", str(tmp_path / "x.gif")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot open an OpenGL context" in err[0], err
    assert "MUJOCO_GL=" in err[0] and not (tmp_path / "x.gif").exists()


# -- Craftax ------------------------------------------------------------------------


@pytest.mark.suites
def test_craftax_time_limit_truncates_and_death_terminates():
    pytest.importorskip("craftax")
    from jaxpg.suites import craftax as cx_suite

    env, params = cx_suite.make("Craftax-Classic-Symbolic-v1")
    assert params.max_steps_in_episode == 10000 and env.num_actions == 17
    limit = 3
    run, reset = make_runner(env, params, limit + 2)
    carry = reset(params)
    noop = fixed(0, env.num_actions)
    short = run(params.replace(max_steps_in_episode=limit), noop, carry)
    long = run(params, noop, carry)
    check_truncation(short, long, limit)

    # Env 0 starts dead and env 1 dead on the time limit's step: both terminate only.
    state = carry.state
    state = state.replace(
        player_health=state.player_health.at[:].set(0),
        timestep=state.timestep.at[1].set(limit - 1),
    )
    dead = run(params.replace(max_steps_in_episode=limit), noop, carry._replace(state=state))
    assert dead.terminated[0].all() and not np.asarray(dead.truncated)[0].any()


@pytest.mark.suites
def test_craftax_trains():
    pytest.importorskip("craftax")
    check_train("craftax/Craftax-Classic-Symbolic-v1")


@pytest.mark.suites
def test_craftax_renders_a_gif(tmp_path):
    pytest.importorskip("craftax")
    # Craftax-Classic's pixel renderer: 9x9 blocks (7x9 map, 2 inventory rows) of 16 pixels.
    check_gif(render_tiny_run("craftax/Craftax-Classic-Symbolic-v1", tmp_path), (144, 144))
