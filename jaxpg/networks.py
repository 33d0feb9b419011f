"""Networks: the protocol the trainer calls, the built-in modules, the two distributions.

The protocol (:class:`Model`): a run's networks are three pure functions of a
parameter pytree,

* ``policy(params, obs[..., *obs_shape]) -> dist``: categorical logits
  ``[..., n]`` (discrete actions) or a :class:`Gaussian` (continuous);
* ``value(params, obs) -> v[...]``: the state value, a scalar per observation;
* ``policy_value(params, obs) -> (dist, v)``: both at once (one torso pass when
  they share it);

plus ``init(key, obs[1, *obs_shape]) -> params``. Recurrent networks follow
:class:`RecurrentModel` instead (``step(params, h, obs) -> (dist, v, h')``, state
``h`` zeroed at episode starts; :func:`unroll` replays a rollout's sequences and
:func:`sequence_view` presents that replay as a :class:`Model` to the losses).

Build a :class:`Model` from flax modules:
:func:`separate` (a policy module and a value module, ``params = {"policy",
"value"}``) or :func:`shared` (one actor-critic module returning ``(dist, v)``,
``params = {"actor_critic"}``); :func:`from_config` builds the built-in ones by
``Config`` name.

Built-in modules take observations in their natural shape: ``network="mlp"``
flattens them, ``network="cnn"`` applies 3×3 convolutions to ``[H, W, C]`` grids
first; ``network="gru"`` (:class:`GRUActorCritic`) adds a GRU cell after the
dense layers. ``weight_init="orthogonal"``: hidden layers use orthogonal init with
gain √2, the policy head 0.01 and the value head 1 (PureJaxRL, CleanRL);
``"lecun"``: flax's default LeCun-normal kernels everywhere. Biases start at zero.
``layer_norm`` adds a LayerNorm before each hidden activation.

The distributions are plain functions on the head's output so they work on any
leading batch shape and under ``vmap``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

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


class Gaussian(NamedTuple):
    mean: jax.Array  # [..., d]
    log_std: jax.Array  # [d] or broadcastable to mean


def _kernel(weight_init: str, gain: float):
    if weight_init == "lecun":
        return nn.initializers.lecun_normal()
    return nn.initializers.orthogonal(gain)


class Torso(nn.Module):
    """Hidden layers: optional 3×3 convolutions over ``[H, W, C]``, then dense layers.

    Input ``[..., *obs_shape]``; output ``[..., features]``. With no convolutions
    the observation is flattened first.
    """

    obs_shape: Sequence[int]
    hidden_sizes: Sequence[int]
    activation: str = "tanh"
    conv_channels: Sequence[int] = ()
    layer_norm: bool = False
    weight_init: str = "orthogonal"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the hidden layers.

        Args:
          x: ``[..., *obs_shape]`` float32 observations.

        Returns:
          ``[..., hidden_sizes[-1]]`` features (the flattened, convolved input when
          ``hidden_sizes`` is empty).
        """
        act = _ACTIVATIONS[self.activation]
        batch = x.shape[: x.ndim - len(self.obs_shape)]
        init = _kernel(self.weight_init, np.sqrt(2.0))
        if self.conv_channels:
            if len(self.obs_shape) != 3:
                raise ValueError(
                    f"network='cnn' needs [H, W, C] observations; got shape {tuple(self.obs_shape)}"
                )
            for c in self.conv_channels:
                x = nn.Conv(c, (3, 3), padding="SAME", kernel_init=init)(x)
                x = act(nn.LayerNorm()(x) if self.layer_norm else x)
        x = x.reshape(batch + (-1,))
        for h in self.hidden_sizes:
            x = nn.Dense(h, kernel_init=init)(x)
            x = act(nn.LayerNorm()(x) if self.layer_norm else x)
        return x


class PolicyHead(nn.Module):
    """Features → logits ``[..., n]`` or a :class:`Gaussian` (state-independent log-std)."""

    action_dim: int
    discrete: bool
    log_std_init: float = 0.0
    weight_init: str = "orthogonal"

    @nn.compact
    def __call__(self, x: jax.Array):
        """Map features to the action distribution.

        Args:
          x: ``[..., F]`` features.

        Returns:
          Logits ``[..., action_dim]`` (discrete) or a :class:`Gaussian` with mean
          ``[..., action_dim]`` and log-std ``[action_dim]``.
        """
        out = nn.Dense(self.action_dim, kernel_init=_kernel(self.weight_init, 0.01))(x)
        if self.discrete:
            return out
        log_std = self.param(
            "log_std", nn.initializers.constant(self.log_std_init), (self.action_dim,)
        )
        return Gaussian(out, log_std)


class ValueHead(nn.Module):
    """Features → a scalar per observation ``[...]``."""

    weight_init: str = "orthogonal"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Map features to V(s).

        Args:
          x: ``[..., F]`` features.

        Returns:
          ``[...]`` float32 values.
        """
        return nn.Dense(1, kernel_init=_kernel(self.weight_init, 1.0))(x)[..., 0]


def _torso(module: nn.Module, obs: jax.Array) -> jax.Array:
    """Apply the :class:`Torso` that ``module``'s fields describe (inside its ``compact``)."""
    shape = tuple(module.obs_shape) if module.obs_shape is not None else obs.shape[-1:]
    torso = Torso(
        shape, module.hidden_sizes, module.activation, module.conv_channels,
        module.layer_norm, module.weight_init, name="torso",
    )  # fmt: skip
    return torso(obs)


class Policy(nn.Module):
    """π_θ(·|s): a :class:`Torso` and a :class:`PolicyHead` (params ``torso``, ``head``).

    ``Policy(hidden_sizes, activation, action_dim, discrete)`` is an MLP policy
    over vector observations; the other fields give LayerNorm, convolutions and
    the observation's shape.
    """

    hidden_sizes: Sequence[int]
    activation: str
    action_dim: int
    discrete: bool
    log_std_init: float = 0.0
    weight_init: str = "orthogonal"
    conv_channels: Sequence[int] = ()
    layer_norm: bool = False
    obs_shape: Sequence[int] | None = None

    @nn.compact
    def __call__(self, obs: jax.Array):
        """π_θ(·|s) for a batch of observations.

        Args:
          obs: ``[..., *obs_shape]`` float32 (``[..., obs_dim]`` when ``obs_shape``
            is not given).

        Returns:
          Logits ``[..., action_dim]`` or a :class:`Gaussian` (see :class:`PolicyHead`).
        """
        x = _torso(self, obs)
        head = PolicyHead(
            self.action_dim, self.discrete, self.log_std_init, self.weight_init, name="head"
        )
        return head(x)


class Value(nn.Module):
    """V_φ(s): a :class:`Torso` and a :class:`ValueHead`, ``[...]`` (params ``torso``, ``head``)."""

    hidden_sizes: Sequence[int]
    activation: str = "tanh"
    weight_init: str = "orthogonal"
    conv_channels: Sequence[int] = ()
    layer_norm: bool = False
    obs_shape: Sequence[int] | None = None

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        """V_φ(s) for a batch of observations.

        Args:
          obs: ``[..., *obs_shape]`` float32.

        Returns:
          ``[...]`` float32 values.
        """
        x = _torso(self, obs)
        return ValueHead(self.weight_init, name="head")(x)


class ActorCritic(Policy):
    """One shared :class:`Torso` with a policy head and a value head: ``obs -> (dist, v)``.

    The same fields as :class:`Policy`; params ``torso``, ``policy_head``, ``value_head``.
    """

    @nn.compact
    def __call__(self, obs: jax.Array):
        """Policy and value from one torso pass.

        Args:
          obs: ``[..., *obs_shape]`` float32.

        Returns:
          ``(dist, v)``: logits ``[..., action_dim]`` or a :class:`Gaussian`, and
          ``v`` ``[...]`` float32.
        """
        x = _torso(self, obs)
        head = PolicyHead(
            self.action_dim, self.discrete, self.log_std_init, self.weight_init,
            name="policy_head",
        )  # fmt: skip
        return head(x), ValueHead(self.weight_init, name="value_head")(x)


class GRUActorCritic(Policy):
    """A recurrent actor-critic: ``(h, obs) -> (dist, v, h')``.

    The observation goes through a :class:`Torso` (``hidden_sizes``), then a GRU
    cell of width ``hidden_sizes[-1]`` whose state ``h`` ``[..., width]`` carries
    the history; the policy and value heads read the GRU's output. The same fields
    as :class:`Policy`; params ``torso``, ``gru``, ``policy_head``, ``value_head``.
    """

    @property
    def width(self) -> int:
        return int(self.hidden_sizes[-1])

    @nn.compact
    def __call__(self, h: jax.Array, obs: jax.Array):
        """One time step of the recurrent actor-critic.

        Args:
          h: ``[..., width]`` float32, the state before this step (zeros at an
            episode's first step).
          obs: ``[..., *obs_shape]`` float32.

        Returns:
          ``(dist, v, h')``: logits ``[..., action_dim]`` or a :class:`Gaussian`,
          ``v`` ``[...]`` float32 and the new state ``[..., width]``.
        """
        x = _torso(self, obs)
        h, x = nn.GRUCell(self.width, name="gru")(h, x)
        head = PolicyHead(
            self.action_dim, self.discrete, self.log_std_init, self.weight_init,
            name="policy_head",
        )  # fmt: skip
        return head(x), ValueHead(self.weight_init, name="value_head")(x), h


class Model(NamedTuple):
    """How the trainer calls a run's networks (see the module docstring).

    Attributes:
      init: ``(key, obs[1, *obs_shape]) -> params``.
      policy: ``(params, obs[..., *obs_shape]) -> dist``.
      value: ``(params, obs) -> v[...]`` (float32).
      policy_value: ``(params, obs) -> (dist, v)``.
    """

    init: Callable[[jax.Array, jax.Array], Any]
    policy: Callable[[Any, jax.Array], Any]
    value: Callable[[Any, jax.Array], jax.Array]
    policy_value: Callable[[Any, jax.Array], tuple[Any, jax.Array]]


def separate(policy: nn.Module, value: nn.Module) -> Model:
    """A :class:`Model` of two flax modules: ``policy(obs) -> dist``, ``value(obs) -> v``.

    ``params`` is ``{"policy": ..., "value": ...}``, initialised from two keys
    split from ``init``'s key.

    Args:
      policy: a flax module ``obs[..., *obs_shape] -> dist`` (logits ``[..., n]``
        or a :class:`Gaussian`).
      value: a flax module ``obs[..., *obs_shape] -> v[...]`` float32.

    Returns:
      The :class:`Model`; its ``policy_value`` calls both modules.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> m = separate(Policy((8,), "tanh", 2, True), Value((8,)))
      >>> params = m.init(jax.random.key(0), jnp.zeros((1, 4)))
      >>> m.policy(params, jnp.zeros((5, 4))).shape, m.value(params, jnp.zeros((5, 4))).shape
      ((5, 2), (5,))
    """

    def init(key, obs):
        k_pol, k_val = jax.random.split(key)
        return {"policy": policy.init(k_pol, obs), "value": value.init(k_val, obs)}

    def pol(params, obs):
        return policy.apply(params["policy"], obs)

    def val(params, obs):
        return value.apply(params["value"], obs)

    return Model(init, pol, val, lambda p, o: (pol(p, o), val(p, o)))


def shared(actor_critic: nn.Module) -> Model:
    """A :class:`Model` of one flax module ``obs -> (dist, v)`` (a shared torso).

    ``params`` is ``{"actor_critic": ...}``; the policy and the value are its two
    outputs, and training differentiates the summed loss through the torso.

    Args:
      actor_critic: a flax module ``obs[..., *obs_shape] -> (dist, v[...])``,
        e.g. :class:`ActorCritic`.

    Returns:
      The :class:`Model`; ``policy`` and ``value`` each run the whole module.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> m = shared(ActorCritic((8,), "tanh", 3, True))
      >>> params = m.init(jax.random.key(0), jnp.zeros((1, 4)))
      >>> dist, v = m.policy_value(params, jnp.zeros((5, 4)))
      >>> dist.shape, v.shape
      ((5, 3), (5,))
    """

    def init(key, obs):
        return {"actor_critic": actor_critic.init(key, obs)}

    def both(params, obs):
        return actor_critic.apply(params["actor_critic"], obs)

    return Model(init, lambda p, o: both(p, o)[0], lambda p, o: both(p, o)[1], both)


class RecurrentModel(NamedTuple):
    """A recurrent policy and critic (see :func:`recurrent`).

    Attributes:
      init: ``(key, obs[1, *obs_shape]) -> params``.
      initial_state: ``(batch) -> h`` ``[batch, ...]``: zeros, the state at an
        episode's first step (the rollout resets ``h`` to zeros where one ends).
      step: ``(params, h, obs[..., *obs_shape]) -> (dist, v, h')``: one time step.
    """

    init: Callable[[jax.Array, jax.Array], Any]
    initial_state: Callable[[int], Any]
    step: Callable[[Any, Any, jax.Array], tuple[Any, jax.Array, Any]]


def recurrent(actor_critic: nn.Module, width: int) -> RecurrentModel:
    """A :class:`RecurrentModel` of one flax module ``(h, obs) -> (dist, v, h')``.

    ``params`` is ``{"actor_critic": ...}``.

    Args:
      actor_critic: a flax module ``(h[B, width], obs[B, *obs_shape]) ->
        (dist, v[B], h'[B, width])``, e.g. :class:`GRUActorCritic`.
      width: the size of the state ``h``.

    Returns:
      The :class:`RecurrentModel`; its ``initial_state(B)`` is ``[B, width]``
      float32 zeros.
    """

    def initial_state(batch: int) -> jax.Array:
        return jnp.zeros((batch, width), jnp.float32)

    def init(key, obs):
        return {"actor_critic": actor_critic.init(key, initial_state(obs.shape[0]), obs)}

    def step(params, h, obs):
        return actor_critic.apply(params["actor_critic"], h, obs)

    return RecurrentModel(init, initial_state, step)


def reset_state(h: Any, done: jax.Array) -> Any:
    """``h`` with the rows where ``done`` is true set to zeros (a new episode).

    Args:
      h: a recurrent state, a pytree of ``[B, ...]`` leaves.
      done: ``[B]`` bool.

    Returns:
      ``h`` with the same structure and shapes.
    """
    return jax.tree.map(
        lambda x: jnp.where(done.reshape(done.shape + (1,) * (x.ndim - done.ndim)), 0.0, x), h
    )


def unroll(model: RecurrentModel, params: Any, h0: Any, obs: jax.Array, done: jax.Array):
    """Replay ``model`` over a rollout, resetting its state after each episode's end.

    Args:
      model: the recurrent networks.
      params: their parameters.
      h0: ``[B, ...]`` the state before the first step (what the rollout started with).
      obs: ``[T, B, *obs_shape]`` the observations s_t.
      done: ``[T, B]`` bool, step t ended its episode (the state is zeroed after it).

    Returns:
      ``(dist [T, B, ...], v [T, B], h [T, B, ...])``, ``h[t]`` the state after step
      t before any reset: with the step's final observation it gives V(s'_t).
    """

    def body(h, x):
        o, d = x
        dist, v, h_next = model.step(params, h, o)
        return reset_state(h_next, d), (dist, v, h_next)

    _, out = jax.lax.scan(body, h0, (obs, done))
    return out


def sequence_view(model: RecurrentModel, h0: Any, done: jax.Array) -> Model:
    """A :class:`Model` of ``model`` replayed over one batch of sequences.

    Its functions take that batch's observations ``[T, B, *obs_shape]`` (and only
    those: ``h0`` and ``done`` fix the history), so the feed-forward losses,
    natural-gradient steps and critic fits apply to recurrent policies unchanged.

    Args:
      model: the recurrent networks.
      h0: ``[B, ...]`` the state before the sequences' first step.
      done: ``[T, B]`` bool, step t ended its episode (see :func:`unroll`).

    Returns:
      A :class:`Model` whose ``policy``/``value``/``policy_value`` map
      ``obs [T, B, *obs_shape]`` to ``dist [T, B, ...]`` and ``v [T, B]``;
      ``init`` is ``model.init``.
    """

    def policy_value(params, obs):
        dist, v, _ = unroll(model, params, h0, obs, done)
        return dist, v

    def init(key, obs):
        return model.init(key, obs)

    return Model(
        init,
        lambda p, o: policy_value(p, o)[0],
        lambda p, o: policy_value(p, o)[1],
        policy_value,
    )


def modules(config, spec) -> tuple[nn.Module, nn.Module | None]:
    """The built-in flax modules ``config`` names.

    Args:
      config: the run's :class:`~jaxpg.config.Config` (``network``,
        ``hidden_sizes``, ``activation``, ``weight_init``, ``conv_channels``,
        ``layer_norm``, ``shared_torso``, ``log_std_init``).
      spec: the environment's :class:`~jaxpg.envs.EnvSpec` (observation shape,
        action dimension, discrete or not).

    Returns:
      ``(policy, value)`` (:class:`Policy`, :class:`Value`) when separate;
      ``(actor_critic, None)`` with ``shared_torso`` (:class:`ActorCritic`) or
      ``network="gru"`` (:class:`GRUActorCritic`).
    """
    body = dict(
        hidden_sizes=config.hidden_sizes,
        activation=config.activation,
        weight_init=config.weight_init,
        conv_channels=config.conv_channels if config.network == "cnn" else (),
        layer_norm=config.layer_norm,
        obs_shape=spec.obs_shape,
    )
    head = dict(
        action_dim=spec.action_dim, discrete=spec.discrete, log_std_init=config.log_std_init
    )
    if config.network == "gru":
        return GRUActorCritic(**body, **head), None
    if config.shared_torso:
        return ActorCritic(**body, **head), None
    return Policy(**body, **head), Value(**body)


def from_config(config, spec) -> Model | RecurrentModel:
    """The built-in networks that ``config`` names, for an env of ``spec``.

    Args:
      config: the run's :class:`~jaxpg.config.Config`.
      spec: the environment's :class:`~jaxpg.envs.EnvSpec`.

    Returns:
      A :class:`RecurrentModel` for ``network="gru"``, otherwise a :class:`Model`
      (:func:`shared` with ``shared_torso``, else :func:`separate`); see
      :func:`modules`.
    """
    first, value = modules(config, spec)
    if isinstance(first, GRUActorCritic):
        return recurrent(first, first.width)
    return shared(first) if value is None else separate(first, value)


def as_model(network: Any) -> Model:
    """Turn what a user passes as ``network=`` into a :class:`Model`.

    Args:
      network: a :class:`Model` or :class:`RecurrentModel` (returned as it is), a
        ``(policy_module, value_module)`` pair (:func:`separate`), or one
        actor-critic flax module returning ``(dist, v)`` (:func:`shared`).

    Returns:
      The :class:`Model` (or :class:`RecurrentModel`).

    Raises:
      ValueError: anything else, naming what is accepted.
    """
    if isinstance(network, (Model, RecurrentModel)):
        return network
    if isinstance(network, tuple) and len(network) == 2:
        return separate(*network)
    if isinstance(network, nn.Module):
        return shared(network)
    raise ValueError(
        "network must be a jaxpg.networks.Model or RecurrentModel, a (policy_module, "
        "value_module) pair "
        f"or an actor-critic flax module returning (dist, value); got {type(network).__name__}"
    )


def check_output(model: Model | RecurrentModel, spec: Any) -> None:
    """Check, without compiling, that ``model``'s outputs fit the action space ``spec``.

    Traces ``init`` and one policy/value call on a ``[1, *obs_shape]`` observation
    abstractly (:func:`jax.eval_shape`): discrete actions need logits ``[1, n]``
    with n the number of actions, a Box needs a :class:`Gaussian` with mean
    ``[1, d]`` (d the action dimension) and a log-std that broadcasts to it, and
    the value must be one scalar per observation, ``[1]``.

    Args:
      model: the run's :class:`Model` or :class:`RecurrentModel`.
      spec: the environment's :class:`~jaxpg.envs.EnvSpec`.

    Raises:
      ValueError: one line naming the network's output and the width the action
        space expects.
    """
    obs = jax.ShapeDtypeStruct((1, *spec.obs_shape), jnp.float32)
    key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype)
    params = jax.eval_shape(model.init, key, obs)
    if isinstance(model, RecurrentModel):
        h = jax.eval_shape(lambda: model.initial_state(1))
        dist, v, _ = jax.eval_shape(model.step, params, h, obs)
    else:
        dist, v = jax.eval_shape(model.policy_value, params, obs)
    n = spec.action_dim
    if spec.discrete:
        if isinstance(dist, Gaussian):
            raise ValueError(
                f"network: the policy returns a Gaussian, but the action space is "
                f"Discrete({n}); return categorical logits [..., {n}]"
            )
        if tuple(dist.shape) != (1, n):
            raise ValueError(
                f"network: the policy returns logits of shape [..., {dist.shape[-1]}] "
                f"(for obs [1, ...]: {tuple(dist.shape)}), but the action space is "
                f"Discrete({n}); the policy head must have width {n}"
            )
    else:
        if not isinstance(dist, Gaussian):
            raise ValueError(
                f"network: the policy returns categorical logits of shape "
                f"{tuple(getattr(dist, 'shape', ()))}, but the action space is a Box of "
                f"dimension {n}; return jaxpg.networks.Gaussian(mean [..., {n}], log_std)"
            )
        if tuple(dist.mean.shape) != (1, n):
            raise ValueError(
                f"network: the policy's Gaussian mean has shape {tuple(dist.mean.shape)} "
                f"for obs [1, ...], but the action space is a Box of dimension {n}; the "
                f"mean head must have width {n}"
            )
        try:
            np.broadcast_shapes(tuple(dist.log_std.shape), (1, n))
        except ValueError:
            raise ValueError(
                f"network: the policy's log_std has shape {tuple(dist.log_std.shape)}, which "
                f"does not broadcast to the mean [..., {n}]"
            ) from None
    if tuple(v.shape) != (1,):
        raise ValueError(
            f"network: the value returns shape {tuple(v.shape)} for obs [1, ...]; it must be "
            f"one scalar per observation, [1] (squeeze the value head's last axis)"
        )


# --- distributions ------------------------------------------------------------


def sample_noise(key: jax.Array, dist, shape: tuple[int, ...] = ()):
    """The randomness of :func:`sample` for ``dist``, drawn ahead for ``shape`` calls.

    Gumbel noise like the logits (categorical) or standard normal noise like the
    mean (Gaussian), with ``shape`` prepended: a rollout draws all ``T`` steps'
    noise in one call instead of one small RNG kernel per step.

    Args:
      key: PRNG key.
      dist: logits ``[..., n]`` or a :class:`Gaussian` with mean ``[..., d]``
        (only its shape and dtype are used).
      shape: leading shape of the draws, e.g. ``(T,)``.

    Returns:
      ``[*shape, ..., n]`` Gumbel or ``[*shape, ..., d]`` normal noise, in the
      dtype of the logits or the mean.
    """
    if isinstance(dist, Gaussian):
        return jax.random.normal(key, shape + dist.mean.shape, dist.mean.dtype)
    return jax.random.gumbel(key, shape + dist.shape, dist.dtype)


def sample_with_noise(dist, noise: jax.Array) -> jax.Array:
    """Turn :func:`sample_noise` into an action (Gumbel-max for logits).

    Args:
      dist: logits ``[..., n]`` or a :class:`Gaussian` with mean ``[..., d]``.
      noise: noise of ``dist``'s shape (one step of :func:`sample_noise`).

    Returns:
      ``argmax(logits + noise)`` ``[...]`` int32, or ``μ + σ·noise`` ``[..., d]``
      (Gaussian, unclipped).
    """
    if isinstance(dist, Gaussian):
        return dist.mean + jnp.exp(dist.log_std) * noise
    return jnp.argmax(dist + noise, axis=-1).astype(jnp.int32)


def sample(key: jax.Array, dist) -> jax.Array:
    """Draw an action from ``dist``.

    Args:
      key: PRNG key.
      dist: logits ``[..., n]`` or a :class:`Gaussian` with mean ``[..., d]``.

    Returns:
      ``[...]`` int32 (categorical) or ``[..., d]`` float32 (Gaussian, unclipped).
    """
    return sample_with_noise(dist, sample_noise(key, dist))


def log_prob(dist, action: jax.Array) -> jax.Array:
    """log π(a|s).

    Args:
      dist: logits ``[..., n]`` or a :class:`Gaussian` (mean ``[..., d]``).
      action: ``[...]`` integer or ``[..., d]`` float actions.

    Returns:
      ``[...]`` float32: log-softmax at the action, or Σ_d log N(a_d; μ_d, σ_d).

    Example:
      >>> float(log_prob(jnp.zeros(2), jnp.int32(1)))  # uniform over 2: log ½
      -0.6931471824645996
    """
    if isinstance(dist, Gaussian):
        z = (action - dist.mean) * jnp.exp(-dist.log_std)
        per_dim = -0.5 * z**2 - dist.log_std - 0.5 * math.log(2 * math.pi)
        return jnp.sum(per_dim, axis=-1)
    logp = jax.nn.log_softmax(dist, axis=-1)
    return jnp.take_along_axis(logp, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def entropy(dist) -> jax.Array:
    """Entropy H(π(·|s)).

    Args:
      dist: logits ``[..., n]`` or a :class:`Gaussian`.

    Returns:
      ``[...]`` float32: −Σ p log p, or Σ_d (log σ_d + ½ log 2πe).
    """
    if isinstance(dist, Gaussian):
        per_dim = dist.log_std + 0.5 * (1.0 + math.log(2 * math.pi))
        return jnp.sum(jnp.broadcast_to(per_dim, dist.mean.shape), axis=-1)
    logp = jax.nn.log_softmax(dist, axis=-1)
    return -jnp.sum(jnp.exp(logp) * logp, axis=-1)
