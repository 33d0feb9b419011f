"""Policy-gradient estimators as surrogate objectives whose gradient is the estimate.

Every estimator maximises a surrogate L(θ) with ∇L = Σ_t ∇log π_θ(a_t|s_t) Ψ_t
(averaged over the batch); they differ only in the weight Ψ_t:

=============== ============================== ==================================
name            Ψ_t                            critic target
=============== ============================== ==================================
reinforce       R(τ) = Σ_k γ^k r_k (episode)   —
reward_to_go    G_t = Σ_{k≥t} γ^{k−t} r_k      —
baseline        G_t − V_φ(s_t)                 G_t (bootstrapped at cuts)
vpg             GAE(γ, λ)                      Â_t + V_φ(s_t) (λ-return)
ppo             clipped-ratio surrogate, GAE   Â_t + V_φ(s_t)
npg             GAE; natural step (F⁻¹ĝ)       Â_t + V_φ(s_t)
trpo            GAE; natural step + line srch  Â_t + V_φ(s_t)
rloo            R_i − mean_{j≠i} R_j (group)   —
grpo            (R_i − R̄)/std, clipped ratio   —
grpo_nostd      R_i − R̄ (Dr. GRPO), clipped    —
=============== ============================== ==================================

The group estimators (``rloo``, ``grpo``, ``grpo_nostd``) draw G =
``group_size`` complete episodes from each start state (:mod:`jaxpg.groups`)
and compare each episode's return R_i with the other returns of its group.
What each of them estimates, exactly (ĝ at θ_old, per-trajectory sums
∇log p(τ_i) = Σ_t ∇log π(a_t|s_t)):

* ``rloo``: (1/N) Σ_i ∇log p(τ_i)(R_i − mean_{j≠i} R_j). τ_i is independent of
  the others in its group, so E[ĝ] = ∇J exactly: **unbiased**.
* ``grpo_nostd``: Ψ_i = R_i − R̄ with R̄ the group mean *including* R_i.
  R_i − R̄ = (1 − 1/G)(R_i − mean_{j≠i} R_j), so E[ĝ] = (1 − 1/G)∇J exactly:
  the direction is unbiased, the length shrunk by 1/G (1/8 at G = 8).
* ``grpo``: Ψ_i = (R_i − R̄)/(s + ε), s the group's sample standard deviation
  (1/(G−1)), ε = 1e-6, and each episode's sum divided by its length |τ_i|
  (GRPO's per-sequence mean). Dividing by s (a function of all G returns,
  R_i included) and by |τ_i| reweights groups and episodes, so E[ĝ] is in
  general **not** a multiple of ∇J: it is the gradient of no fixed objective
  and its bias has no closed form; :func:`jaxpg.groups.exact_group_gradient`
  computes it exactly by enumerating groups on small MDPs, and the tests
  check the trainer against it (groups with s = 0 contribute nothing).
  On TwoStep (``tests/tiny_mdp.py``, γ = 0.9, G = 4) the exact expectation
  has cosine 0.992 with ∇J and 0.40 of its length. With only two possible
  returns (pass/fail rewards) and one start state, every group weighting is a
  positive multiple of ∇J (E[∇log p(τ_i)Ψ_i] = (E[Ψ|pass] − E[Ψ|fail])·∇P(pass));
  the direction bias comes from more return values, from several start states
  (each group is rescaled by its own 1/s) and from 1/|τ_i|.

``grpo`` and ``grpo_nostd`` then take PPO's clipped-ratio steps (``num_epochs``
× ``num_minibatches``; the first step is the gradient above, later ones are
off-policy corrections limited by clip ε) with no critic and no KL penalty
to a reference policy (β = 0).

Weights are computed from a rollout with the *pre-update* critic, so the
baseline never depends on the batch it is applied to through a refit, and are
wrapped in ``stop_gradient`` here. Normalisation of the loss:

* ``per_trajectory=True`` (complete episodes): (1/N) Σ_i Σ_t — the unbiased
  estimate of ∇J for N trajectories.
* ``per_trajectory=False`` (fixed segments): the mean over all T·B steps, the
  usual per-timestep normalisation of segment-based trainers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxpg import returns

Array = jax.Array


class Weights(NamedTuple):
    psi: Array  # Ψ_t, [T, B]
    value_target: Array | None  # critic regression target, [T, B] or None


def _reinforce(
    reward: Array, values: Array, next_values: Array, terminated: Array, truncated: Array,
    *, gamma: float | Array, lam: float | Array,
) -> Weights:  # fmt: skip
    del values, next_values, lam
    return Weights(returns.episode_returns(reward, terminated, truncated, gamma=gamma), None)


def _reward_to_go(
    reward: Array, values: Array, next_values: Array, terminated: Array, truncated: Array,
    *, gamma: float | Array, lam: float | Array,
) -> Weights:  # fmt: skip
    del values, next_values, lam
    zeros = jnp.zeros_like(reward)
    return Weights(returns.reward_to_go(reward, zeros, terminated, truncated, gamma=gamma), None)


def _baseline(
    reward: Array, values: Array, next_values: Array, terminated: Array, truncated: Array,
    *, gamma: float | Array, lam: float | Array,
) -> Weights:  # fmt: skip
    del lam
    g = returns.reward_to_go(reward, next_values, terminated, truncated, gamma=gamma)
    return Weights(g - values, g)


def _gae(
    reward: Array, values: Array, next_values: Array, terminated: Array, truncated: Array,
    *, gamma: float | Array, lam: float | Array,
) -> Weights:  # fmt: skip
    adv = returns.gae(reward, values, next_values, terminated, truncated, gamma=gamma, lam=lam)
    return Weights(adv, adv + values)


GROUP_EPS = 1e-6  # ε of grpo's (R − R̄)/(s + ε)


def _first_episode(
    reward: Array, terminated: Array, truncated: Array, *, gamma: float | Array
) -> tuple[Array, Array]:
    """Return R_i of each env's first episode ``[B]`` and its length |τ_i| ``[B]``."""
    ret = returns.episode_returns(reward, terminated, truncated, gamma=gamma)[0]
    done = jnp.logical_or(terminated, truncated).astype(jnp.float32)
    before = jnp.cumsum(done, axis=0) - done  # episodes ended before step t
    length = jnp.sum((before == 0).astype(jnp.float32), axis=0)
    return ret, length


def group_baseline(ret: Array, group_size: int, kind: str) -> Array:
    """Group-relative weights of the returns ``[B]`` (B = groups × G, group-major).

    Args:
      ret: R_i ``[B]``; env ``b`` belongs to group ``b // group_size``.
      group_size: G ≥ 2.
      kind: ``"loo"`` (R_i − mean_{j≠i} R_j), ``"mean"`` (R_i − R̄) or ``"std"``
        ((R_i − R̄)/(s + ε), s the sample standard deviation of the group).

    Returns:
      Ψ_i ``[B]``.

    Example:
      >>> r = jnp.array([1.0, 2.0, 6.0, 0.0, 0.0, 0.0])
      >>> group_baseline(r, 3, "loo").tolist()  # 1 − (2+6)/2, 2 − (1+6)/2, 6 − 1.5
      [-3.0, -1.5, 4.5, 0.0, 0.0, 0.0]
    """
    r = ret.reshape(-1, group_size)
    total = jnp.sum(r, axis=1, keepdims=True)
    if kind == "loo":
        psi = r - (total - r) / (group_size - 1)
    else:
        psi = r - total / group_size
        if kind == "std":
            s = jnp.sqrt(jnp.sum(psi**2, axis=1, keepdims=True) / (group_size - 1))
            psi = psi / (s + GROUP_EPS)
    return psi.reshape(ret.shape)


def _group(kind: str, per_length: bool) -> Callable[..., Weights]:
    def weights(
        reward: Array,
        values: Array,
        next_values: Array,
        terminated: Array,
        truncated: Array,
        *,
        gamma: float | Array,
        lam: float | Array,
        group_size: int,
    ) -> Weights:
        del values, next_values, lam
        ret, length = _first_episode(reward, terminated, truncated, gamma=gamma)
        psi = group_baseline(ret, group_size, kind)
        # The trainer averages over steps (PPO's masked mean) or sums per trajectory
        # (``step``); rescale so that both give (1/N) Σ_i c_i Σ_t ∇log π · Ψ_i with
        # c_i = 1/|τ_i| (grpo) or 1 (the others).
        if kind != "loo":
            scale = jnp.mean(length) / length if per_length else jnp.mean(length)
            psi = psi * scale
        return Weights(jnp.broadcast_to(psi, reward.shape), None)

    return weights


class EstimatorInfo(NamedTuple):
    """What an estimator is and what the trainer must give it.

    Attributes:
      name: the ``Config.estimator`` value.
      weights: ``(reward, values, next_values, terminated, truncated, *, gamma, lam)
        -> Weights``, all ``[T, ...]``.
      critic: trains a value network and uses it in Ψ (segments can be bootstrapped).
      episodic: needs complete episodes (no critic to bootstrap a cut episode).
      update: ``"step"`` (one full-batch gradient step per rollout, on-policy) or
        ``"epochs"`` (PPO's ``num_epochs × num_minibatches`` clipped-ratio steps) or
        ``"trust_region"`` (one natural-gradient step of the policy,
        :mod:`jaxpg.natural`, then ``num_epochs × num_minibatches`` critic steps).
      normalize: advantage normalisation is on by default.
      line_search: ``update="trust_region"`` only: TRPO's backtracking line
        search (``trpo``) instead of the whole natural step (``npg``).
      grouped: draws ``group_size`` episodes per start state (:mod:`jaxpg.groups`);
        ``weights`` takes a ``group_size`` keyword.
    """

    name: str
    weights: Callable[..., Weights]
    critic: bool
    episodic: bool
    update: str
    normalize: bool
    line_search: bool = False
    grouped: bool = False


#: The one table of estimators: everything else (Config validation, the update,
#: the CLI's choices, the docs' tests) reads it.
REGISTRY: dict[str, EstimatorInfo] = {
    e.name: e
    for e in (
        EstimatorInfo("reinforce", _reinforce, False, True, "step", False),
        EstimatorInfo("reward_to_go", _reward_to_go, False, True, "step", False),
        EstimatorInfo("baseline", _baseline, True, False, "step", False),
        EstimatorInfo("vpg", _gae, True, False, "step", False),
        EstimatorInfo("ppo", _gae, True, False, "epochs", True),
        EstimatorInfo("npg", _gae, True, False, "trust_region", True),
        EstimatorInfo("trpo", _gae, True, False, "trust_region", True, line_search=True),
        EstimatorInfo("rloo", _group("loo", False), False, True, "step", False, grouped=True),
        EstimatorInfo("grpo", _group("std", True), False, True, "epochs", False, grouped=True),
        EstimatorInfo(
            "grpo_nostd", _group("mean", False), False, True, "epochs", False, grouped=True
        ),
    )
}
ESTIMATORS: tuple[str, ...] = tuple(REGISTRY)


def info(estimator: str) -> EstimatorInfo:
    """The registry entry of ``estimator``.

    Args:
      estimator: an estimator name (one of :data:`ESTIMATORS`).

    Returns:
      Its :class:`EstimatorInfo` from :data:`REGISTRY`.

    Raises:
      ValueError: naming the allowed estimators.

    Example:
      >>> info("ppo").update
      'epochs'
    """
    try:
        return REGISTRY[estimator]
    except KeyError:
        raise ValueError(
            f"estimator={estimator!r} is unknown; allowed: {', '.join(ESTIMATORS)}"
        ) from None


def weights(
    estimator: str,
    reward: Array,
    values: Array,
    next_values: Array,
    terminated: Array,
    truncated: Array,
    *,
    gamma: float | Array,
    lam: float | Array,
    group_size: int = 1,
) -> Weights:
    """Compute Ψ_t (and the critic target) for a static estimator name.

    Args:
      estimator: one of ``ESTIMATORS``.
      reward, values, next_values, terminated, truncated: ``[T, ...]`` as in
        ``jaxpg.returns``. ``values``/``next_values`` are ignored by the
        critic-free estimators, which require complete episodes.
      gamma, lam: floats or traced scalars.
      group_size: G of the grouped estimators (``[T, B]`` with B = groups × G,
        group-major, one complete episode per env); ignored by the others.

    Returns:
      :class:`Weights` with ``psi`` ``[T, ...]`` and the critic target.
    """
    entry = info(estimator)
    extra = {"group_size": group_size} if entry.grouped else {}
    return entry.weights(
        reward, values, next_values, terminated, truncated, gamma=gamma, lam=lam, **extra
    )


def masked_mean(x: Array, mask: Array) -> Array:
    """Mean of ``x`` over the entries where ``mask`` is 1: Σ x·m / max(Σ m, 1).

    Args:
      x: values, any shape.
      mask: float 0/1 weights of ``x``'s shape.

    Returns:
      A float32 scalar (0 when the mask is empty).

    Example:
      >>> float(masked_mean(jnp.array([1.0, 2.0, 9.0]), jnp.array([1.0, 1.0, 0.0])))
      1.5
    """
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def normalize(psi: Array, mask: Array, eps: float = 1e-8) -> Array:
    """(Ψ − mean) / (std + eps) over the masked batch.

    This subtracts a same-batch mean baseline (bias O(1/N)) and rescales by a
    batch statistic; it changes the estimator and is off for the vanilla ones.

    Args:
      psi: weights Ψ, any shape (``[T, B]``).
      mask: 0/1 of the same shape; masked entries do not enter the statistics.
      eps: added to the standard deviation.

    Returns:
      The normalised weights, ``psi``'s shape.
    """
    mean = masked_mean(psi, mask)
    var = masked_mean((psi - mean) ** 2, mask)
    return (psi - mean) / (jnp.sqrt(var) + eps)


def pg_surrogate(log_prob: Array, psi: Array, mask: Array, normalizer: Array | float) -> Array:
    """Σ mask·log π(a|s)·stop_gradient(Ψ) / normalizer; its gradient is the estimate.

    Args:
      log_prob: log π_θ(a_t|s_t), ``[T, B]`` (or flat ``[N]``).
      psi: the weights Ψ_t, same shape (not differentiated).
      mask: 0/1, same shape.
      normalizer: N trajectories (complete episodes: the unbiased (1/N) Σ_i Σ_t)
        or the number of unmasked steps (segments).

    Returns:
      The scalar surrogate.
    """
    return jnp.sum(log_prob * jax.lax.stop_gradient(psi) * mask) / normalizer


def ppo_surrogate(
    log_prob: Array, old_log_prob: Array, adv: Array, mask: Array, clip_eps: Array | float
) -> tuple[Array, Array, Array]:
    """PPO's clipped objective E[min(ρ Â, clip(ρ, 1 ± ε) Â)], ρ = π/π_old.

    Args:
      log_prob: log π_θ(a_t|s_t), ``[N]`` float32 (or any shape).
      old_log_prob: log π_old(a_t|s_t) of the rollout, same shape.
      adv: advantages Â_t, same shape (not differentiated).
      mask: 0/1 float32, same shape; masked entries do not count.
      clip_eps: ε, a float or a traced scalar.

    Returns:
      ``(objective, approx_kl, clip_fraction)``, float32 scalars (masked means);
      approx KL is the low-variance estimator E[(ρ − 1) − log ρ], and it and the
      clip fraction carry no gradient.
    """
    adv = jax.lax.stop_gradient(adv)
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    obj = masked_mean(jnp.minimum(ratio * adv, clipped * adv), mask)
    kl = masked_mean(jax.lax.stop_gradient((ratio - 1.0) - log_ratio), mask)
    frac = masked_mean(
        jax.lax.stop_gradient((jnp.abs(ratio - 1.0) > clip_eps).astype(adv.dtype)), mask
    )
    return obj, kl, frac


def value_loss(value: Array, target: Array, mask: Array) -> Array:
    """½ E[(V_φ(s) − target)²] over the masked steps (target is not differentiated).

    Args:
      value: V_φ(s_t), ``[T, B]`` or ``[N]``.
      target: the regression target, same shape.
      mask: 0/1, same shape.

    Returns:
      The scalar loss.
    """
    return 0.5 * masked_mean((value - jax.lax.stop_gradient(target)) ** 2, mask)
