"""Policy and value networks (flax.linen) and the two action distributions.

* ``Policy``: MLP torso; a categorical head (logits ``[..., n]``) for discrete
  actions, or a diagonal Gaussian (mean ``[..., d]`` plus a state-independent
  log-std parameter) for continuous ones.
* ``Value``: a separate MLP returning a scalar ``[...]``.
* ``weight_init="orthogonal"``: hidden layers use orthogonal init with gain √2, the
  policy head gain 0.01 and the value head gain 1 (the initialisation PPO
  implementations share). ``weight_init="lecun"``: flax's default LeCun-normal kernels
  everywhere. Biases start at zero.

The distributions are plain functions on the head's output so they work on any
leading batch shape and under ``vmap``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

_ACTIVATIONS = {
    "tanh": jnp.tanh,
    "relu": nn.relu,
    "gelu": nn.gelu,
    "silu": nn.silu,
    "elu": nn.elu,
}


class MLP(nn.Module):
    """Dense layers with the chosen activation, then a linear head of ``out_dim``."""

    hidden_sizes: Sequence[int]
    activation: str
    out_dim: int
    out_gain: float
    weight_init: str = "orthogonal"

    def _kernel(self, gain: float):
        if self.weight_init == "lecun":
            return nn.initializers.lecun_normal()
        return nn.initializers.orthogonal(gain)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = _ACTIVATIONS[self.activation]
        for h in self.hidden_sizes:
            x = act(nn.Dense(h, kernel_init=self._kernel(np.sqrt(2.0)))(x))
        return nn.Dense(self.out_dim, kernel_init=self._kernel(self.out_gain))(x)


class Gaussian(NamedTuple):
    mean: jax.Array  # [..., d]
    log_std: jax.Array  # [d] or broadcastable to mean


class Policy(nn.Module):
    """π_θ(·|s): logits ``[..., n]`` (discrete) or a :class:`Gaussian` (continuous)."""

    hidden_sizes: Sequence[int]
    activation: str
    action_dim: int
    discrete: bool
    log_std_init: float = 0.0
    weight_init: str = "orthogonal"

    @nn.compact
    def __call__(self, obs: jax.Array):
        out = MLP(self.hidden_sizes, self.activation, self.action_dim, 0.01, self.weight_init)(obs)
        if self.discrete:
            return out
        log_std = self.param(
            "log_std", nn.initializers.constant(self.log_std_init), (self.action_dim,)
        )
        return Gaussian(out, log_std)


class Value(nn.Module):
    """V_φ(s): a scalar per observation, ``[...]``."""

    hidden_sizes: Sequence[int]
    activation: str
    weight_init: str = "orthogonal"

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return MLP(self.hidden_sizes, self.activation, 1, 1.0, self.weight_init)(obs)[..., 0]


# --- distributions ------------------------------------------------------------


def sample_noise(key: jax.Array, dist, shape: tuple[int, ...] = ()):
    """The randomness of :func:`sample` for ``dist``, drawn ahead for ``shape`` calls.

    Gumbel noise like the logits (categorical) or standard normal noise like the
    mean (Gaussian), with ``shape`` prepended: a rollout draws all ``T`` steps'
    noise in one call instead of one small RNG kernel per step.
    """
    if isinstance(dist, Gaussian):
        return jax.random.normal(key, shape + dist.mean.shape, dist.mean.dtype)
    return jax.random.gumbel(key, shape + dist.shape, dist.dtype)


def sample_with_noise(dist, noise: jax.Array) -> jax.Array:
    """Turn :func:`sample_noise` into an action (Gumbel-max for logits)."""
    if isinstance(dist, Gaussian):
        return dist.mean + jnp.exp(dist.log_std) * noise
    return jnp.argmax(dist + noise, axis=-1).astype(jnp.int32)


def sample(key: jax.Array, dist) -> jax.Array:
    """Draw an action: ``[...]`` int32 (categorical) or ``[..., d]`` float32."""
    return sample_with_noise(dist, sample_noise(key, dist))


def log_prob(dist, action: jax.Array) -> jax.Array:
    """log π(a|s), shape ``[...]``."""
    if isinstance(dist, Gaussian):
        z = (action - dist.mean) * jnp.exp(-dist.log_std)
        per_dim = -0.5 * z**2 - dist.log_std - 0.5 * math.log(2 * math.pi)
        return jnp.sum(per_dim, axis=-1)
    logp = jax.nn.log_softmax(dist, axis=-1)
    return jnp.take_along_axis(logp, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def entropy(dist) -> jax.Array:
    """Entropy H(π(·|s)), shape ``[...]``."""
    if isinstance(dist, Gaussian):
        per_dim = dist.log_std + 0.5 * (1.0 + math.log(2 * math.pi))
        return jnp.sum(jnp.broadcast_to(per_dim, dist.mean.shape), axis=-1)
    logp = jax.nn.log_softmax(dist, axis=-1)
    return -jnp.sum(jnp.exp(logp) * logp, axis=-1)
