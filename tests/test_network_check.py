"""A user's network is checked against the action space before anything compiles."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

import jaxpg
from jaxpg import networks
from jaxpg.runspec import make_runspec

CFG = dict(num_envs=2, num_steps=8, num_minibatches=2, total_timesteps=16)


class Heads(nn.Module):
    """An actor-critic with ``n`` logits (or a Gaussian of width ``n``) and a value."""

    n: int
    gaussian: bool = False
    value_width: int | None = None

    @nn.compact
    def __call__(self, obs):
        x = nn.Dense(8)(obs.reshape(obs.shape[:-1] + (-1,)))
        out = nn.Dense(self.n)(x)
        v = nn.Dense(self.value_width or 1)(x)
        v = v[..., 0] if self.value_width is None else v
        if self.gaussian:
            out = networks.Gaussian(out, jnp.zeros(self.n))
        return out, v


@pytest.mark.parametrize(
    "env, net, match",
    [
        ("CartPole-v1", Heads(3), r"logits of shape \[\.\.\., 3\].*Discrete\(2\).*width 2$"),
        ("CartPole-v1", Heads(2, gaussian=True), r"returns a Gaussian.*Discrete\(2\)"),
        ("Pendulum-v1", Heads(2, gaussian=True), r"mean has shape \(1, 2\).*dimension 1.*width 1$"),
        ("Pendulum-v1", Heads(1), r"returns categorical logits.*Box of dimension 1"),
        ("CartPole-v1", Heads(2, value_width=1), r"value returns shape \(1, 1\)"),
    ],
)
def test_wrong_network_output_is_refused_before_compiling(env, net, match):
    cfg = jaxpg.Config(env=env, **CFG)
    with pytest.raises(ValueError, match=r"^network: .*" + match):
        jaxpg.make_train(cfg, network=net)


def test_wrong_width_of_separate_policy_module():
    class Logits(nn.Module):
        @nn.compact
        def __call__(self, obs):
            return nn.Dense(3)(obs)

    class V(nn.Module):
        @nn.compact
        def __call__(self, obs):
            return nn.Dense(1)(obs)[..., 0]

    with pytest.raises(ValueError, match=r"width 2$"):
        jaxpg.make_update(jaxpg.Config(**CFG), network=(Logits(), V()))


def test_right_networks_pass():
    spec_cfg = jaxpg.Config(**CFG)
    jaxpg.make_train(spec_cfg, network=Heads(2))  # builds: the check passes
    pend = jaxpg.Config(env="Pendulum-v1", **CFG)
    jaxpg.make_train(pend, network=Heads(1, gaussian=True))
    gru = jaxpg.Config(network="gru", hidden_sizes=(8,), **CFG)
    run = make_runspec(gru)
    networks.check_output(run.model, run.spec)  # recurrent: step's outputs
    state = jaxpg.make_init(spec_cfg, network=Heads(2))(jax.random.key(0))
    assert "actor_critic" in state.params
