"""Running observation and reward normalisation, carried in the training state.

``Config(normalize_obs=True)``: the networks see ``clip((s − μ) / √(σ² + ε), ±10)``,
μ and σ² the running mean and variance of every observation the run has collected
(elementwise, over the observation's shape). ``Config(normalize_rewards=True)``: the
update's rewards are divided by the running standard deviation of the per-env
discounted return ``R_t = r_t + γ·R_{t−1}`` (reset at episode ends) and clipped to ±10;
the mean is not subtracted, so the sign of every reward is kept. Both are off by
default; continuous-control tasks (Brax) usually want them.

When the statistics change (the on-policy rule):

* Observations: one update rolls out, computes its critic values and optimises with
  the statistics it started with, and only then adds the rollout's observations to
  them. The behaviour policy and the policy being optimised therefore see identical
  inputs, so PPO's ratio is exactly 1 at the first minibatch and the trust-region
  KL is measured against the policy that acted. (Brax and PureJaxRL update the
  statistics first, which makes the stored log-probabilities those of a slightly
  different policy.)
* Rewards: the rollout's discounted returns are added to the statistics first and
  its rewards scaled with the result (the scale only sets the loss's units).

The statistics are :class:`RunningStats` leaves of ``TrainState.obs_norm`` and
``TrainState.reward_norm`` (``None`` when off, so the state of an un-normalised run is
unchanged). They are checkpointed and restored bitwise with the rest of the state,
and evaluation (``make_evaluate``, ``jaxpg eval``) applies the trained statistics
frozen: it never updates them. Counts are float32: exact up to 2²⁴ observations,
afterwards the weight of a new batch is accurate to float32 rounding.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from jaxpg import networks

EPS = 1e-8  # ε under the square root
CLIP = 10.0  # normalised observations and scaled rewards are clipped to ±CLIP


class RunningStats(flax.struct.PyTreeNode):
    """Count, mean and (population) variance of the samples seen so far."""

    count: jax.Array  # float32 []
    mean: jax.Array  # float32 [*shape]
    var: jax.Array  # float32 [*shape]

    @classmethod
    def zeros(cls, shape: tuple[int, ...]) -> RunningStats:
        """No samples yet: normalising is the identity until the first update.

        Args:
          shape: the shape of one sample (``obs_shape``, or ``()`` for returns).

        Returns:
          Zero ``count`` ``[]`` and zero ``mean``/``var`` ``[*shape]``, float32.
        """
        z = jnp.zeros(shape, jnp.float32)
        return cls(jnp.zeros((), jnp.float32), z, z)


class RewardNorm(flax.struct.PyTreeNode):
    """The discounted-return statistics and each env's running discounted return."""

    stats: RunningStats  # over R_t, scalar shape
    ret: jax.Array  # float32 [num_envs], R_t of each env's current episode


def init_reward_norm(num_envs: int) -> RewardNorm:
    """Reward statistics before any sample: zero count, every env's return 0.

    Args:
      num_envs: B, the run's parallel environments.

    Returns:
      :class:`RewardNorm` with scalar zero :class:`RunningStats` and ``ret``
      ``[num_envs]`` float32 zeros.
    """
    return RewardNorm(RunningStats.zeros(()), jnp.zeros((num_envs,), jnp.float32))


def update_stats(stats: RunningStats, x: jax.Array, mask: jax.Array) -> RunningStats:
    """Add the samples ``x`` ``[*batch, *shape]`` whose ``mask`` ``[*batch]`` is 1.

    Chan et al.'s parallel merge of (count, mean, M2): one pass, no per-sample loop,
    and exact (up to rounding) whatever the batch sizes. A batch with no unmasked
    sample leaves ``stats`` unchanged.

    Args:
      stats: the statistics so far, ``mean``/``var`` ``[*shape]``.
      x: ``[*batch, *shape]`` samples (e.g. observations ``[T, B, *obs_shape]``).
      mask: ``[*batch]``, 1 (or True) for samples to count.

    Returns:
      The merged :class:`RunningStats` (float32; ``var`` is the population variance).

    Example:
      >>> s = update_stats(RunningStats.zeros(()), jnp.array([1.0, 3.0, 9.0]), jnp.array([1, 1, 0]))
      >>> float(s.count), float(s.mean), float(s.var)
      (2.0, 2.0, 1.0)
    """
    event = x.ndim - mask.ndim
    w = mask.astype(jnp.float32).reshape(mask.shape + (1,) * event)
    axes = tuple(range(mask.ndim))
    n_b = jnp.sum(mask.astype(jnp.float32))
    safe_b = jnp.maximum(n_b, 1.0)
    mean_b = jnp.sum(w * x, axis=axes) / safe_b
    var_b = jnp.sum(w * (x - mean_b) ** 2, axis=axes) / safe_b
    n = stats.count + n_b
    safe_n = jnp.maximum(n, 1.0)
    delta = mean_b - stats.mean
    mean = stats.mean + delta * (n_b / safe_n)
    m2 = stats.var * stats.count + var_b * n_b + delta**2 * (stats.count * n_b / safe_n)
    return RunningStats(n, mean, m2 / safe_n)


def _scale(stats: RunningStats) -> jax.Array:
    """√(σ² + ε), or 1 before any sample."""
    return jnp.where(stats.count > 0, jnp.sqrt(stats.var + EPS), 1.0)


def normalize(stats: RunningStats, obs: jax.Array) -> jax.Array:
    """``clip((obs − μ) / √(σ² + ε), ±CLIP)``; the identity before any sample.

    Args:
      stats: statistics with ``mean``/``var`` of shape ``obs_shape``.
      obs: ``[..., *obs_shape]`` float32 observations.

    Returns:
      The normalised observations, same shape, float32.
    """
    z = (obs - jnp.where(stats.count > 0, stats.mean, 0.0)) / _scale(stats)
    return jnp.where(stats.count > 0, jnp.clip(z, -CLIP, CLIP), obs)


def with_obs_norm(model: Any, stats: RunningStats | None) -> Any:
    """``model`` with every observation normalised by ``stats`` (``None``: ``model`` itself).

    The returned model closes over ``stats``; build it inside the traced function
    that holds them (``update``, ``evaluate``).

    Args:
      model: a :class:`~jaxpg.networks.Model` or ``RecurrentModel``.
      stats: the observation statistics (``TrainState.obs_norm``), or ``None``.

    Returns:
      A model of the same kind whose ``policy``/``value``/``policy_value`` (or
      ``step``) apply :func:`normalize` to their float32 observations first;
      ``init`` is unchanged.
    """
    if stats is None:
        return model

    def norm(obs: jax.Array) -> jax.Array:
        return normalize(stats, jnp.asarray(obs, jnp.float32))

    if isinstance(model, networks.RecurrentModel):
        return model._replace(step=lambda p, h, obs: model.step(p, h, norm(obs)))
    return networks.Model(
        init=model.init,
        policy=lambda p, obs: model.policy(p, norm(obs)),
        value=lambda p, obs: model.value(p, norm(obs)),
        policy_value=lambda p, obs: model.policy_value(p, norm(obs)),
    )


def discounted_returns(
    ret0: jax.Array, reward: jax.Array, done: jax.Array, gamma: Any
) -> tuple[jax.Array, jax.Array]:
    """``R_t = r_t + γ·R_{t−1}`` over ``[T, B]`` rewards, ``R`` reset to 0 after a done.

    Args:
      ret0: ``[B]`` each env's return before the rollout.
      reward: ``[T, B]``.
      done: ``[T, B]``.
      gamma: γ (may be traced).

    Returns:
      ``(R [T, B], carry [B])``: the returns, and each env's return to carry on
      (0 where the last step ended its episode).
    """

    def step(r: jax.Array, x: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        rew, d = x
        r = rew + gamma * r
        return jnp.where(d, 0.0, r), r

    carry, rets = jax.lax.scan(step, ret0, (reward, done))
    return rets, carry


def scale_rewards(
    norm: RewardNorm, reward: jax.Array, done: jax.Array, mask: jax.Array, gamma: Any
) -> tuple[jax.Array, RewardNorm]:
    """Add the rollout's discounted returns to the statistics; scale its rewards.

    Args:
      norm: the statistics and per-env returns before this rollout.
      reward: ``[T, B]``.
      done: ``[T, B]``.
      mask: ``[T, B]`` (masked steps neither count nor accumulate).
      gamma: γ of the run.

    Returns:
      ``(clip(r / √(σ_R² + ε), ±CLIP) [T, B], the updated RewardNorm)``.
    """
    rets, carry = discounted_returns(norm.ret, reward * mask, done, gamma)
    stats = update_stats(norm.stats, rets, mask)
    scaled = jnp.clip(reward / _scale(stats), -CLIP, CLIP)
    return scaled, RewardNorm(stats, carry)
