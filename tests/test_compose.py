"""What make_update, make_train, make_init, make_sharded_train and make_evaluate return
composes: it nests in the user's own jax.jit + lax.scan and jax.vmap, and a second call
with same-shaped inputs compiles nothing (counted, not timed)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxpg
from jaxpg import optimizers
from jaxpg.evaluate import make_evaluate

# Two updates of a tiny actor-critic (GAE, one gradient step each) on width-8 MLPs:
# the smallest programs that still have a critic, an optimizer and every state leaf.
TINY = jaxpg.Config(
    estimator="vpg", num_envs=2, num_steps=4, total_timesteps=2 * 4 * 2, hidden_sizes=(8,)
)
LRS = [1e-3, 3e-2]


def close(a, b) -> None:
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=2e-5, atol=1e-6)


def params_differ(params, i: int, j: int) -> bool:
    return any(bool(jnp.any(p[i] != p[j])) for p in jax.tree.leaves(params))


# -- nesting in the user's jit, scan and vmap -------------------------------------------
def test_update_and_init_nest_in_users_jit_scan_and_vmap():
    init, update = jaxpg.make_init(TINY), jaxpg.make_update(TINY)

    @jax.jit
    def users_loop(key, hp):  # PureJaxRL's pattern: the whole run in the user's program
        state = init(key)
        return jax.lax.scan(lambda s, _: update(s, hp), state, None, length=2)

    key, hp = jax.random.key(0), TINY.hparams()
    state, metrics = users_loop(key, hp)
    direct = init(key)
    for _ in range(2):
        direct, _ = update(direct, hp)
    close(state.params, direct.params)
    assert metrics["policy_loss"].shape == (2,) and int(state.update_step) == 2

    batched = jax.jit(jax.vmap(users_loop, in_axes=(None, 0)))(key, TINY.hparams(lr=LRS))
    assert batched[0].update_step.shape == (2,)
    close(jax.tree.map(lambda x: x[0], batched[0].params), state.params)  # lr[0] is the default
    assert params_differ(batched[0].params, 0, 1)  # the swept lr acts


@pytest.mark.parametrize("sharded", [False, True], ids=["make_train", "make_sharded_train"])
def test_train_nests_in_users_jit_scan_and_vmap(sharded):
    train = (
        jaxpg.make_sharded_train(TINY, devices=jax.devices()[:1])
        if sharded
        else jaxpg.make_train(TINY)
    )
    keys = jax.random.split(jax.random.key(1), 2)

    @jax.jit
    def runs_in_a_scan(keys, hp):
        return jax.lax.scan(lambda c, k: (c, train(k, hp).metrics["policy_loss"]), None, keys)[1]

    losses = runs_in_a_scan(keys, TINY.hparams())
    close(losses[1], jax.jit(train)(keys[1], TINY.hparams()).metrics["policy_loss"])
    out = jax.jit(jax.vmap(train, in_axes=(None, 0)))(keys[0], TINY.hparams(lr=LRS))
    close(out.metrics["policy_loss"][0], losses[0])
    assert params_differ(out.state.params, 0, 1)


def test_evaluate_nests_in_users_jit_scan_and_vmap():
    train, evaluate = jaxpg.make_train(TINY), make_evaluate(TINY, num_episodes=2)
    params = jax.jit(jax.vmap(train, in_axes=(None, 0)))(
        jax.random.key(2), TINY.hparams(lr=LRS)
    ).state.params
    keys = jax.random.split(jax.random.key(3), 2)
    first = jax.tree.map(lambda x: x[0], params)

    @jax.jit
    def scanned(keys, params):
        return jax.lax.scan(lambda c, k: (c, evaluate(k, params).returns), None, keys)[1]

    returns = scanned(keys, first)
    close(returns[0], evaluate(keys[0], first).returns)
    per_lr = jax.jit(jax.vmap(evaluate, in_axes=(None, 0)))(keys[0], params)
    assert per_lr.returns.shape == (2, 2)
    close(per_lr.returns[0], returns[0])


# -- compile once -----------------------------------------------------------------------
@contextlib.contextmanager
def count_compiles():
    """Count XLA backend compilations in the block (jax's monitoring event)."""
    seen = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            seen.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def twice(fn, first, second) -> int:
    """Compilations of ``fn(*first)`` then ``fn(*second)`` (inputs made beforehand)."""
    with count_compiles() as seen:
        jax.block_until_ready(fn(*first))
        jax.block_until_ready(fn(*second))
    return len(seen)


ENVS = [
    "CartPole-v1",
    "Pendulum-v1",
    "Acrobot-v1",
    "MountainCarContinuous-v0",
    "Catch-bsuite",
    "Breakout-MinAtar",
]


def test_the_counter_counts():
    f = jax.jit(lambda x: x * 2)
    assert twice(f, (jnp.ones(3),), (jnp.ones(4),)) == 2  # a new shape compiles again
    assert twice(f, (jnp.ones(3),), (jnp.zeros(3),)) == 0  # both cached now


@pytest.mark.parametrize("env", ENVS)
def test_each_function_compiles_once(env):
    cfg = TINY.replace(env=env)
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    hp1, hp2 = cfg.hparams(), cfg.hparams(lr=3e-3, gamma=0.9)
    init = jax.jit(jaxpg.make_init(cfg))
    update = jaxpg.make_update(cfg)
    assert twice(init, (k1,), (k2,)) == 1
    state = init(k1)
    # The user's loop: init, then update its own output (the second call reuses the program).
    with count_compiles() as seen:
        state, _ = update(state, hp1)
        state, _ = jax.block_until_ready(update(state, hp2))
    assert len(seen) == 1, env
    evaluate = jax.jit(make_evaluate(cfg, num_episodes=2))
    assert twice(evaluate, (k1, init(k1).params), (k2, state.params)) == 1
    if env == "Pendulum-v1":  # whole runs too, where the weak types used to be
        assert twice(jax.jit(jaxpg.make_train(cfg)), (k1, hp1), (k3, hp2)) == 1
        sharded = jaxpg.make_sharded_train(cfg, devices=jax.devices()[:1])
        assert twice(sharded, (k1, hp1), (k3, hp2)) == 1


# -- the whole public surface after import jaxpg ---------------------------------------
def test_import_jaxpg_gives_every_submodule_and_starts_no_backend():
    code = """
import pkgutil, sys, types
import jaxpg
from jax._src import xla_bridge
names = [m.name for m in pkgutil.iter_modules(jaxpg.__path__) if not m.name.startswith("_")]
assert {"envs", "networks", "rollout", "variance", "estimators"} <= set(names) <= set(dir(jaxpg))
assert not xla_bridge.backends_are_initialized() and "gymnax" not in sys.modules
assert callable(jaxpg.envs.register) and callable(jaxpg.rollout.rollout_segment)
assert jaxpg.networks.Model and jaxpg.variance.per_trajectory_gradients
for name in names:
    assert isinstance(getattr(jaxpg, name), types.ModuleType), name
try:
    jaxpg.no_such_thing
except AttributeError as e:
    assert "no_such_thing" in str(e)
else:
    raise AssertionError("no AttributeError")
print("ok")
"""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# -- no silent ignoring -----------------------------------------------------------------
@pytest.fixture
def fresh_warnings():
    optimizers._warned.clear()
    yield
    optimizers._warned.clear()


def test_ready_made_optimizer_under_swept_lr_warns_once_naming_the_field(fresh_warnings):
    train = jax.jit(jax.vmap(jaxpg.make_train(TINY, optimizer=optax.adam(1e-3)), (None, 0)))
    with warnings.catch_warnings():  # the config's own values, broadcast as over seeds: fine
        warnings.simplefilter("error", optimizers.IgnoredHParamWarning)
        jax.block_until_ready(train(jax.random.key(0), TINY.hparams(lr=[TINY.lr] * 2)))
    with pytest.warns(optimizers.IgnoredHParamWarning, match=r"HParams\.lr differs") as rec:
        jax.block_until_ready(train(jax.random.key(0), TINY.hparams(lr=LRS)))
        jax.block_until_ready(train(jax.random.key(1), TINY.hparams(lr=LRS)))
    ignored = [w for w in rec if issubclass(w.category, optimizers.IgnoredHParamWarning)]
    assert len(ignored) == 1 and "HParams.max_grad_norm" not in str(ignored[0].message)


def test_ready_made_optimizer_refuses_known_values_and_warns_on_traced(fresh_warnings):
    tx = optax.sgd(1e-2)
    train = jaxpg.make_train(TINY, optimizer=tx)  # not jitted: the values are concrete
    with pytest.raises(ValueError, match=r"HParams\.max_grad_norm differs .*max_grad_norm=0\.5"):
        train(jax.random.key(0), TINY.hparams(max_grad_norm=2.0))
    update = jaxpg.make_update(TINY, optimizer=tx)  # jitted: checked when it runs
    state = jaxpg.make_init(TINY, optimizer=tx)(jax.random.key(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", optimizers.IgnoredHParamWarning)
        jax.block_until_ready(update(state, TINY.hparams()))
    with pytest.warns(optimizers.IgnoredHParamWarning, match=r"HParams\.max_grad_norm"):
        jax.block_until_ready(update(state, TINY.hparams(max_grad_norm=2.0)))


def test_factory_optimizer_reads_the_traced_values():
    # A factory is driven by lr and clipped by max_grad_norm: nothing is ignored.
    opt = optimizers.make_optimizer(TINY, 2, 1, lambda lr: optax.sgd(lr))
    opt.build(TINY.hparams(lr=0.5, max_grad_norm=2.0))  # no check, no error
    assert float(opt.schedule(TINY.hparams(lr=0.5), jnp.asarray(0))) == 0.5
