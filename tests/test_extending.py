"""Users' own networks, optimizers and environments (docs/extending.md), and the guard."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import struct
from gymnax.environments import environment, spaces

import jaxpg
from jaxpg import envs, networks
from jaxpg.runspec import make_runspec

TINY = jaxpg.Config(num_envs=4, num_steps=16, num_minibatches=2, total_timesteps=4 * 16 * 3)


def finite(tree) -> bool:
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(tree))


# -- optimizers -------------------------------------------------------------------------
def test_plain_optax_chain_trains():
    # The chain that crashed the old update (it assumed inject_hyperparams(adam)).
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(3e-4))
    out = jax.jit(jaxpg.make_train(TINY, optimizer=tx))(jax.random.key(0))
    assert finite(out.state.params)
    assert np.all(np.isnan(out.metrics["lr"]))  # its rate is its own: not reported


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "rmsprop"])
def test_optimizer_by_name_moves_the_policy(name):
    cfg = TINY.replace(optimizer=name)
    state = jaxpg.make_init(cfg)(jax.random.key(0))
    new, _ = jaxpg.make_update(cfg)(state, cfg.hparams())
    moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), new.params, state.params)
    assert any(jax.tree.leaves(moved)) and finite(new.params)


def test_factory_optimizer_keeps_lr_and_clip_traced_one_compile():
    seen = []

    def factory(learning_rate):
        seen.append(1)  # Python side effect: once per trace
        return optax.adamw(learning_rate, weight_decay=1e-4)

    train = jax.jit(jax.vmap(jaxpg.make_train(TINY, optimizer=factory), in_axes=(None, 0)))
    out = train(jax.random.key(0), TINY.hparams(lr=[1e-3, 3e-3]))
    first = train._cache_size()
    again = train(jax.random.key(0), TINY.hparams(lr=[1e-2, 3e-4], max_grad_norm=[1.0, 2.0]))
    assert train._cache_size() == first == 1
    # Annealed linearly over 3 updates from each run's own lr.
    np.testing.assert_allclose(out.metrics["lr"][:, 0], [1e-3, 3e-3], rtol=1e-6)
    np.testing.assert_allclose(again.metrics["lr"][1], 3e-4 * np.array([1, 2 / 3, 1 / 3]), 1e-5)
    assert seen  # the factory was used


@pytest.mark.parametrize(
    "optimizer, match",
    [
        (lambda lr: "adam", "factory .* returned str, not an optax.GradientTransformation"),
        (lambda lr: optax.adam, "returned function"),
        (42, "got int"),
    ],
)
def test_a_bad_optimizer_is_named_before_compiling(optimizer, match):
    with pytest.raises(ValueError, match=match):
        jaxpg.make_train(TINY, optimizer=optimizer)


def test_clip_norm_is_traced_and_acts():
    # With a tiny clip the one SGD step is tiny: max_grad_norm reaches the Optax chain.
    cfg = TINY.replace(estimator="vpg", optimizer="sgd", anneal_lr=False)
    state = jaxpg.make_init(cfg)(jax.random.key(0))
    update = jaxpg.make_update(cfg)
    small, m = update(state, cfg.hparams(lr=1.0, max_grad_norm=1e-6))
    step = optax.global_norm(jax.tree.map(jnp.subtract, small.params, state.params))
    assert float(m["grad_norm"]) > 1e-3 and float(step) <= 1.01e-6


# -- networks ---------------------------------------------------------------------------
class TwoHeads(nn.Module):
    @nn.compact
    def __call__(self, obs):
        x = jnp.tanh(nn.LayerNorm()(nn.Dense(16)(obs)))
        return nn.Dense(2)(x), nn.Dense(1)(x)[..., 0]


def test_user_actor_critic_module():
    out = jax.jit(jaxpg.make_train(TINY, network=TwoHeads()))(jax.random.key(0))
    assert set(out.state.params) == {"actor_critic"} and finite(out.state.params)


def test_user_policy_value_pair():
    class Pol(nn.Module):
        @nn.compact
        def __call__(self, obs):
            return nn.Dense(2)(obs)

    class Val(nn.Module):
        @nn.compact
        def __call__(self, obs):
            return nn.Dense(1)(obs)[..., 0]

    out = jax.jit(jaxpg.make_train(TINY, network=(Pol(), Val())))(jax.random.key(0))
    assert set(out.state.params) == {"policy", "value"}


def test_network_must_be_a_model_pair_or_module():
    with pytest.raises(ValueError, match="network must be a jaxpg.networks.Model"):
        jaxpg.make_train(TINY, network="big")


def test_shared_torso_and_layer_norm_by_name():
    cfg = TINY.replace(shared_torso=True, layer_norm=True)
    params = jaxpg.make_init(cfg)(jax.random.key(0)).params
    torso = params["actor_critic"]["params"]["torso"]
    assert set(params) == {"actor_critic"} and "LayerNorm_0" in torso


def test_cnn_keeps_the_grid_and_mlp_flattens_it():
    # Breakout-MinAtar observations are [10, 10, 4]; the CNN convolves them as such.
    cnn = TINY.replace(env="Breakout-MinAtar", network="cnn", conv_channels=(8,))
    run = make_runspec(cnn)
    assert run.spec.obs_shape == (10, 10, 4)
    params = run.model.init(jax.random.key(0), jnp.zeros((1, 10, 10, 4)))
    kernel = params["policy"]["params"]["torso"]["Conv_0"]["kernel"]
    assert kernel.shape == (3, 3, 4, 8)
    logits = run.model.policy(params, jnp.zeros((7, 5, 10, 10, 4)))  # any batch dims
    assert logits.shape == (7, 5, run.spec.action_dim)
    mlp = make_runspec(cnn.replace(network="mlp"))
    p = mlp.model.init(jax.random.key(0), jnp.zeros((1, 10, 10, 4)))
    assert p["policy"]["params"]["torso"]["Dense_0"]["kernel"].shape[0] == 400


def test_cnn_needs_a_grid():
    with pytest.raises(ValueError, match=r"network='cnn' needs \[H, W, C\]"):
        jaxpg.make_init(TINY.replace(network="cnn"))(jax.random.key(0))


def test_model_protocol_by_hand():
    # A Model of plain functions: a linear softmax policy and a zero critic.
    model = networks.Model(
        init=lambda key, obs: {"w": jnp.zeros((4, 2))},
        policy=lambda p, obs: obs @ p["w"],
        value=lambda p, obs: jnp.zeros(obs.shape[:-1]),
        policy_value=lambda p, obs: (obs @ p["w"], jnp.zeros(obs.shape[:-1])),
    )
    cfg = TINY.replace(estimator="reinforce", total_timesteps=4 * 500)
    out = jax.jit(jaxpg.make_train(cfg, network=model))(jax.random.key(0))
    assert out.state.params["w"].shape == (4, 2) and bool(jnp.any(out.state.params["w"] != 0))


# -- environments -----------------------------------------------------------------------
@struct.dataclass
class CState(environment.EnvState):
    pos: Any


@struct.dataclass
class CParams(environment.EnvParams):
    max_steps_in_episode: int = 5


class Walk(environment.Environment):
    """Position += action; terminates at +3; truncated after 5 steps."""

    @property
    def default_params(self):
        return CParams()

    def reset_env(self, key, params):
        return jnp.zeros(1), CState(time=0, pos=jnp.int32(0))

    def step_env(self, key, state, action, params):
        s = CState(time=state.time + 1, pos=state.pos + action)
        return s.pos[None].astype(jnp.float32), s, jnp.float32(1.0), s.pos >= 3, {}

    def observation_space(self, params):
        return spaces.Box(-10, 10, (1,), jnp.float32)

    def action_space(self, params):
        return spaces.Discrete(2)


class OldStyleWalk:
    """gymnax 0.x's interface: ``step`` returns five values, ``done`` merges the limit."""

    default_params = CParams()

    def __init__(self):
        self.inner = Walk()

    def reset(self, key, params=None):
        return self.inner.reset(key, params)

    def step(self, key, state, action, params=None):
        obs, state, reward, term, trunc, info = self.inner.step(key, state, action, params)
        return obs, state, reward, jnp.logical_or(term, trunc), info

    def observation_space(self, params):
        return self.inner.observation_space(params)

    def action_space(self, params):
        return self.inner.action_space(params)


def test_register_by_name_works_in_config():
    envs.register("Walk-test", Walk, overwrite=True)
    cfg = TINY.replace(env="Walk-test", num_minibatches=1)
    out = jax.jit(jaxpg.make_train(cfg))(jax.random.key(0))
    assert finite(out.state.params)
    assert "Walk-test" in envs.registered()


@pytest.mark.parametrize(
    "name,match",
    [
        ("CartPole-v1", "is a gymnax id"),
        ("suite/x", "without '/'"),
        ("", "non-empty"),
    ],
)
def test_register_refuses_bad_names(name, match):
    with pytest.raises(ValueError, match=match):
        envs.register(name, Walk)


def test_register_refuses_a_taken_name():
    envs.register("Walk-taken", Walk, overwrite=True)
    with pytest.raises(ValueError, match="already registered"):
        envs.register("Walk-taken", Walk)


def test_unknown_env_and_bad_env_module_name_the_field():
    with pytest.raises(ValueError, match=r"Config.env='Nope-v0' is invalid: allowed: .*Acrobot"):
        jaxpg.Config(env="Nope-v0")
    with pytest.raises(ValueError, match=r"Config.env_module='no_such_mod_xyz' is invalid"):
        jaxpg.Config(env_module="no_such_mod_xyz")


def test_legacy_five_value_step_is_wrapped():
    env, params = envs.make_env(OldStyleWalk())
    assert isinstance(env, envs.LegacyStep)
    spec = envs.env_spec(env, params)
    carry = jaxpg.rollout.reset_envs(jax.random.key(0), env, params, 1)
    # Always step 0 (never reaches +3): the 5-step time limit arrives as "done".
    policy = lambda p, obs: jnp.array([[0.0, -1e9]]).repeat(obs.shape[0], 0)  # noqa: E731
    _, trans = jaxpg.rollout.rollout_segment(
        jax.random.key(1), policy, None, env, params, spec, carry, 6
    )
    # What is lost: the limit looks like a termination (no truncation flag).
    np.testing.assert_array_equal(trans.terminated[:, 0], [0, 0, 0, 0, 1, 0])
    assert not bool(jnp.any(trans.truncated))
    out = jax.jit(jaxpg.make_train(TINY.replace(num_minibatches=1), env=OldStyleWalk()))(
        jax.random.key(0)
    )
    assert finite(out.state.params)


def test_not_an_environment():
    with pytest.raises(ValueError, match="env must be an environment id or an object"):
        envs.make_env(object())


# -- hyperparameters and the guard --------------------------------------------------------
def test_hparams_broadcast_and_unknown_field():
    hp = TINY.hparams(lr=[1e-3, 2e-3], gamma=[[0.9], [0.99]])
    assert hp.lr.shape == hp.clip_eps.shape == (2, 2) and hp.lr.dtype == jnp.float32
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['lrr'\]"):
        TINY.hparams(lrr=1.0)


@pytest.mark.parametrize(
    "field,value",
    [("lr", np.nan), ("lr", -1.0), ("gamma", 5.0), ("lam", -0.1), ("clip_eps", 0.0),
     ("ent_coef", np.inf), ("max_grad_norm", np.nan)],
)  # fmt: skip
def test_hparams_valid(field, value):
    assert bool(TINY.hparams().valid())
    bad = TINY.hparams()._replace(**{field: jnp.asarray(value, jnp.float32)})
    assert not bool(bad.valid())  # traced values (a sweep's, a user's own pytree)
    with pytest.raises(ValueError, match=f"hparams: {field}="):  # concrete ones: refused now
        TINY.hparams(**{field: value})


def test_guard_refuses_bad_hparams_and_stops_at_a_nan():
    train = jax.jit(jaxpg.make_train(TINY, guard=True))
    ok = train(jax.random.key(0))
    assert int(ok.stopped_at) == 0 and list(ok.metrics["update"]) == [1, 2, 3]
    bad = train(jax.random.key(0), TINY.hparams()._replace(gamma=jnp.float32(5.0)))
    assert int(bad.stopped_at) == 1 and int(bad.state.update_step) == 0
    # A reward that turns NaN in the second update's rollout: update 2 is refused.
    nan_walk = TINY.replace(num_minibatches=1)

    class NanWalk(Walk):  # never terminates; the reward is NaN from step 21 on
        def step_env(self, key, state, action, params):
            obs, s, r, term, info = super().step_env(key, state, action, params)
            return obs, s, jnp.where(s.time > 20, jnp.nan, r), jnp.zeros_like(term), info

    out = jax.jit(jaxpg.make_train(nan_walk, env=NanWalk(), env_params=CParams(100), guard=True))(
        jax.random.key(0)
    )
    # Each env walks at most 16 steps per update; times > 20 first occur in update 2.
    assert int(out.stopped_at) == 2 and int(out.state.update_step) == 1
    assert list(out.metrics["update"]) == [1, 0, 0]
