"""Bad input raises a clear ValueError naming the field and the allowed values,
before anything is traced or compiled."""

import jax
import pytest

import jaxpg
import jaxpg.train  # noqa: F401 - loaded up front: gymnax and optax call jax.jit on import
from jaxpg.config import ESTIMATORS


def test_defaults_are_cartpole_ppo():
    cfg = jaxpg.Config()
    assert cfg.env == "CartPole-v1" and cfg.estimator == "ppo"
    assert cfg.rollout_mode == "segments" and cfg.normalize
    hash(cfg)  # static config is hashable


@pytest.mark.parametrize(
    "fields, needle",
    [
        (dict(env="CartPole-v9"), "Config.env='CartPole-v9'"),
        (dict(estimator="a2c"), "allowed: " + ", ".join(ESTIMATORS)),
        (dict(num_envs=3, num_steps=5, num_minibatches=4), "must divide num_envs*num_steps = 15"),
        (dict(activation="swish"), "Config.activation"),
        (dict(gamma=1.5), "Config.gamma=1.5 is invalid: must lie in [0, 1]"),
        (dict(lam=-0.1), "Config.lam"),
        (dict(lr=0.0), "Config.lr"),
        (dict(num_envs=0), "Config.num_envs=0 is invalid"),
        (dict(hidden_sizes=()), "Config.hidden_sizes"),
        (dict(rollout="segments", estimator="reinforce"), "needs rollout='episodes'"),
        (dict(total_timesteps=10), "Config.total_timesteps=10"),
        (dict(rollout="chunks"), "allowed: auto, segments, episodes"),
        (
            dict(weight_init="xavier"),
            "Config.weight_init='xavier' is invalid: allowed: orthogonal, lecun",
        ),
        (
            dict(num_envs=4, num_steps=8, num_minibatches=2, grad_chunk=5),
            "Config.grad_chunk=5 is invalid: must divide the minibatch size",
        ),
        (dict(grad_chunk=0), "Config.grad_chunk=0 is invalid: must be an integer >= 1"),
        (dict(estimator="vpg", rollout="episodes", grad_chunk=8), "segments' only"),
        (
            dict(minibatch_shuffle="random"),
            "Config.minibatch_shuffle='random' is invalid: allowed: feistel, sort",
        ),
    ],
)
def test_bad_config_raises_before_compile(fields, needle, monkeypatch):
    def no_compile(*a, **k):  # pragma: no cover - the point is it is never called
        raise AssertionError("compiled before validating")

    monkeypatch.setattr(jax, "jit", no_compile)
    with pytest.raises(ValueError) as err:
        jaxpg.make_train(jaxpg.Config(**fields))
    assert needle in str(err.value)


def test_unknown_env_lists_allowed_ids():
    with pytest.raises(ValueError, match="allowed: .*Acrobot-v1"):
        jaxpg.Config(env="Nope-v0")


def test_from_dict_roundtrip_and_unknown_field():
    cfg = jaxpg.Config(hidden_sizes=(32, 16), lr=1e-3)
    assert jaxpg.Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown Config field"):
        jaxpg.Config.from_dict({"learning_rate": 1e-3})
