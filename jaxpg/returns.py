"""Return and advantage scans.

Conventions (shared by every function here):

* Arrays are time-major: axis 0 is time ``T``; any trailing shape (``[T]``,
  ``[T, B]``, ``[T, B, K]`` ...) is treated as batch.
* ``terminated[t]`` is true when step ``t`` reached a true terminal state: the
  future value after it is 0.
* ``truncated[t]`` is true when step ``t`` ended its episode for any other
  reason (a time limit). The episode *could* have continued, so value-based
  quantities bootstrap from ``next_values[t]`` = V(s'_t), the value of the true
  final observation (never the reset observation).
* The last step of the array is a cut as well: scans bootstrap from
  ``next_values[T-1]`` there unless it terminated. Pass zeros for
  ``next_values`` when the data are complete episodes.
* ``gamma`` and ``lam`` may be Python floats or traced 0-d arrays; they are cast
  to the rewards' dtype once, so new values never cause a retrace.

The reverse scans are plain ``lax.scan(reverse=True)`` over named step
functions, which keeps them cheap to jit and easy to test against the NumPy
oracles in ``tests/reference.py``.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

Array = jax.Array


def _check(rewards: Array, *others: Array) -> None:
    chex.assert_rank(rewards, {1, 2, 3, 4})
    chex.assert_equal_shape([rewards, *others])


def _as_scalar(x: ArrayLike, dtype: DTypeLike) -> Array:
    x = jnp.asarray(x, dtype=dtype)
    chex.assert_rank(x, 0)
    return x


def _flags(x: Array, dtype: DTypeLike) -> Array:
    return jnp.asarray(x).astype(dtype)


def td_errors(
    rewards: Array,
    values: Array,
    next_values: Array,
    terminated: Array,
    *,
    gamma: float | Array,
) -> Array:
    """Compute one-step TD errors.

    δ_t = r_t + γ (1 − terminated_t) V(s'_t) − V(s_t).

    Args:
      rewards: ``[T, ...]`` rewards r_t.
      values: ``[T, ...]`` V(s_t).
      next_values: ``[T, ...]`` V(s'_t), the value of the true next observation.
      terminated: ``[T, ...]`` bool, true terminations.
      gamma: discount, float or traced scalar.

    Returns:
      ``[T, ...]`` TD errors, dtype of ``rewards``.

    Example:
      >>> import jax.numpy as jnp
      >>> td_errors(jnp.array([1.0]), jnp.array([2.0]), jnp.array([3.0]),
      ...           jnp.array([False]), gamma=0.5).tolist()
      [0.5]
    """
    _check(rewards, values, next_values, terminated)
    dtype = rewards.dtype
    gamma = _as_scalar(gamma, dtype)
    not_term = 1.0 - _flags(terminated, dtype)
    return rewards + gamma * not_term * next_values - values


def _gae_step(carry: Array, x: tuple[Array, Array]) -> tuple[Array, Array]:
    """One reverse step: A_t = δ_t + γλ (1 − done_t) A_{t+1}."""
    delta_t, decay_t = x
    adv_t = delta_t + decay_t * carry
    return adv_t, adv_t


def gae(
    rewards: Array,
    values: Array,
    next_values: Array,
    terminated: Array,
    truncated: Array,
    *,
    gamma: float | Array,
    lam: float | Array,
) -> Array:
    """Generalized advantage estimation over a time-major batch.

    Â_t = Σ_l (γλ)^l δ_{t+l}, the sum cut where ``terminated | truncated``;
    δ_t = r_t + γ (1 − terminated_t) V(s'_t) − V(s_t). λ = 1 gives the
    bootstrapped return minus V(s_t); λ = 0 gives δ_t.

    Args:
      rewards: ``[T, ...]`` float rewards r_t.
      values: ``[T, ...]`` V(s_t).
      next_values: ``[T, ...]`` V(s'_t) of the true next observation (the final
        observation when step t ended the episode).
      terminated: ``[T, ...]`` bool, true terminations (future value 0).
      truncated: ``[T, ...]`` bool, time-limit or other non-terminal ends.
      gamma: discount γ, float or traced scalar.
      lam: GAE λ, float or traced scalar.

    Returns:
      ``[T, ...]`` advantages Â_t, dtype of ``rewards``.

    Example:
      >>> import jax.numpy as jnp
      >>> r = jnp.array([1.0, 1.0]); z = jnp.zeros(2); f = jnp.zeros(2, bool)
      >>> gae(r, z, z, f, f, gamma=0.5, lam=1.0).tolist()  # 1 + 0.5·1, then 1
      [1.5, 1.0]

    References:
      Schulman et al. 2016, "High-Dimensional Continuous Control Using
      Generalized Advantage Estimation".
    """
    _check(rewards, values, next_values, terminated, truncated)
    dtype = rewards.dtype
    gamma = _as_scalar(gamma, dtype)
    lam = _as_scalar(lam, dtype)
    delta = td_errors(rewards, values, next_values, terminated, gamma=gamma)
    done = jnp.logical_or(terminated, truncated)
    decay = gamma * lam * (1.0 - _flags(done, dtype))
    _, adv = jax.lax.scan(_gae_step, jnp.zeros_like(rewards[0]), (delta, decay), reverse=True)
    return adv


def lambda_returns(
    rewards: Array,
    values: Array,
    next_values: Array,
    terminated: Array,
    truncated: Array,
    *,
    gamma: float | Array,
    lam: float | Array,
) -> Array:
    """λ-returns, the critic's regression target: G^λ_t = Â_t + V(s_t).

    Args and shapes as in :func:`gae`.

    Returns:
      ``[T, ...]`` λ-returns.
    """
    adv = gae(rewards, values, next_values, terminated, truncated, gamma=gamma, lam=lam)
    return adv + values


def _rtg_step(carry: Array, x: tuple[Array, Array, Array, Array]) -> tuple[Array, Array]:
    """One reverse step: G_t = r_t + γ [(1 − done_t) G_{t+1} + boot_t]."""
    r_t, gamma_cont_t, boot_t, _ = x
    g_t = r_t + gamma_cont_t * carry + boot_t
    return g_t, g_t


def reward_to_go(
    rewards: Array,
    next_values: Array,
    terminated: Array,
    truncated: Array,
    *,
    gamma: float | Array,
) -> Array:
    """Discounted reward-to-go, bootstrapped at truncations and at the array's end.

    G_t = r_t + γ·c_t, where c_t = 0 if step t terminated, V(s'_t) if it was
    truncated or is the last step ``T − 1``, and G_{t+1} otherwise.

    This is the common "reward-to-go" weight Σ_{k≥t} γ^{k−t} r_k; it lacks the
    γ^t prefactor of the exact gradient of the discounted objective (see
    ``jaxpg.variance`` for that form).

    Args:
      rewards: ``[T, ...]`` rewards.
      next_values: ``[T, ...]`` V(s'_t); zeros for complete episodes.
      terminated: ``[T, ...]`` bool.
      truncated: ``[T, ...]`` bool.
      gamma: discount, float or traced scalar.

    Returns:
      ``[T, ...]`` G_t, dtype of ``rewards``.

    Example:
      >>> import jax.numpy as jnp
      >>> r = jnp.array([1.0, 2.0, 3.0]); nv = jnp.array([0.0, 0.0, 10.0])
      >>> f = jnp.zeros(3, bool); trunc = jnp.array([False, False, True])
      >>> reward_to_go(r, nv, f, trunc, gamma=1.0).tolist()  # 3+10, 2+13, 1+15
      [16.0, 15.0, 13.0]
    """
    _check(rewards, next_values, terminated, truncated)
    dtype = rewards.dtype
    gamma = _as_scalar(gamma, dtype)
    term = _flags(terminated, dtype)
    # The array's last step is a cut: bootstrap there as at a truncation.
    cut = jnp.logical_or(truncated, jnp.zeros_like(truncated).at[-1].set(True))
    cut = _flags(cut, dtype) * (1.0 - term)
    done = jnp.maximum(term, cut)
    gamma_cont = gamma * (1.0 - done)
    boot = gamma * cut * next_values
    _, g = jax.lax.scan(
        _rtg_step,
        jnp.zeros_like(rewards[0]),
        (rewards, gamma_cont, boot, done),
        reverse=True,
    )
    return g


def _episode_start_step(carry: Array, x: tuple[Array, Array]) -> tuple[Array, Array]:
    """Forward step: carry the reward-to-go of the current episode's first step."""
    g_t, start_t = x
    ret_t = jnp.where(start_t, g_t, carry)
    return ret_t, ret_t


def episode_returns(
    rewards: Array,
    terminated: Array,
    truncated: Array,
    *,
    gamma: float | Array,
) -> Array:
    """For each step, the discounted return of the whole episode it belongs to.

    R(τ) = Σ_k γ^k r_k over the episode containing step t, with the sum starting
    at that episode's first step. An episode cut by the array's boundary counts
    only the steps inside the array (no bootstrapping: use complete episodes).

    Args:
      rewards: ``[T, ...]`` rewards.
      terminated: ``[T, ...]`` bool.
      truncated: ``[T, ...]`` bool.
      gamma: discount, float or traced scalar.

    Returns:
      ``[T, ...]`` R(τ) of the episode each step belongs to.

    Example:
      >>> import jax.numpy as jnp
      >>> r = jnp.array([1.0, 1.0, 5.0]); f = jnp.zeros(3, bool)
      >>> term = jnp.array([False, True, False])
      >>> episode_returns(r, term, f, gamma=0.5).tolist()  # 1 + 0.5, then 5
      [1.5, 1.5, 5.0]
    """
    _check(rewards, terminated, truncated)
    zeros = jnp.zeros_like(rewards)
    done = jnp.logical_or(terminated, truncated)
    # Within-episode reward-to-go without bootstrapping; its value at the
    # episode's first step is that episode's return.
    g = reward_to_go(rewards, zeros, done, jnp.zeros_like(done), gamma=gamma)
    start = jnp.concatenate([jnp.ones_like(done[:1]), done[:-1]], axis=0)
    _, ret = jax.lax.scan(_episode_start_step, jnp.zeros_like(rewards[0]), (g, start))
    return ret
