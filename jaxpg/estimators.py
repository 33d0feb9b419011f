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
cispo           grpo's Ψ, token mean; clipped  —
                detached weight × log π
gspo            grpo's Ψ; clipped sequence     —
                ratio (π/π_old)^{1/|τ|}
dapo            grpo's Ψ, token mean, groups   —
                without spread masked;
                clip-higher ratio
reinforce_pp    G_t normalised over the whole  —
                batch, clipped ratio
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

* ``cispo`` and ``gspo`` (:mod:`jaxpg.llm.cispo`, :mod:`jaxpg.llm.gspo`; their
  modules state the objectives): at θ_old ``gspo``'s gradient is exactly
  ``grpo``'s (same expectation), and ``cispo``'s is ``grpo``'s Ψ with the token
  mean instead of the per-sequence mean (``exact_group_gradient`` with
  ``per_length=False``; 2× grpo's on TwoStep, where every episode has 2 steps).
  ``dapo`` (:mod:`jaxpg.llm.dapo`) masks the groups without spread, so its
  expectation is conditional on spread: (1 − (1 − p)^M)/p times ``cispo``'s
  (p = P(a group has spread), M groups).
* ``reinforce_pp`` (REINFORCE++, no new module: ``reward_to_go``'s weights,
  advantage normalisation on, PPO's epochs): Ψ_t = (G_t − μ̂)/σ̂ with μ̂, σ̂ the
  mean and standard deviation over every step of the batch, one episode per
  env and no groups. μ̂ and σ̂ depend on every G_t of the batch, so E[ĝ] is
  **a biased direction** whose figure depends on the batch size: on TwoStep
  (γ = 0.9) with N = 4 episodes, enumerated over all 4⁴ batches, its cosine
  with ∇J is 0.988 and its length 0.49 of ∇J's (a per-step mean over 2-step
  episodes and 1/σ̂; ``tests/test_llm.py``). Its
  per-token KL penalty in the reward is not built (no reference policy).

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

from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxpg import returns, updates
from jaxpg.llm import cispo, dapo, gspo

# The losses live in jaxpg.losses (shared with the update kinds); public here too.
from jaxpg.losses import (  # noqa: F401
    masked_mean,
    normalize,
    pg_surrogate,
    ppo_surrogate,
    value_loss,
)
from jaxpg.updates import EPOCHS, STEP, TRUST_REGION, UpdateKind

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


class Estimator(NamedTuple):
    """One registry row: what an estimator is and what the trainer must give it.

    Attributes:
      name: the ``Config.estimator`` value.
      weights: ``(reward, values, next_values, terminated, truncated, *, gamma, lam)
        -> Weights``, all ``[T, ...]`` (and a ``group_size`` keyword when
        ``grouped``).
      critic: trains a value network and uses it in Ψ (segments can be bootstrapped).
      episodic: needs complete episodes (no critic to bootstrap a cut episode).
      update: the :class:`jaxpg.updates.UpdateKind`: :data:`~jaxpg.updates.STEP`
        (one full-batch gradient step per rollout, on-policy),
        :data:`~jaxpg.updates.EPOCHS` (PPO's ``num_epochs × num_minibatches``
        clipped-ratio steps) or :data:`~jaxpg.updates.TRUST_REGION` (one
        natural-gradient step of the policy, :mod:`jaxpg.natural`, then
        ``num_epochs × num_minibatches`` critic steps).
      normalize: advantage normalisation is on by default.
      line_search: ``TRUST_REGION`` only: TRPO's backtracking line search
        (``trpo``) instead of the whole natural step (``npg``).
      grouped: draws ``group_size`` episodes per start state (:mod:`jaxpg.groups`);
        ``weights`` takes a ``group_size`` keyword.
      length_scaled: Ψ carries the batch's mean episode length as a factor (so
        that a per-step mean over the batch is the per-trajectory mean); the
        variance tools divide it out (``grpo``, ``grpo_nostd``).
      discounted_return: Ψ is built from whole-episode returns R_γ(τ) = Σ_k γ^k r_k,
        which already weight reward k by γ^k, so it is exact for ∇J_γ and the
        variance tools' ``exact_discount`` leaves it unchanged (``reinforce``
        and the group estimators).
    """

    name: str
    weights: Callable[..., Weights]
    critic: bool
    episodic: bool
    update: UpdateKind
    normalize: bool = False
    line_search: bool = False
    grouped: bool = False
    length_scaled: bool = False
    discounted_return: bool = False


#: The former name of :class:`Estimator`.
EstimatorInfo = Estimator

_ROWS = (
    Estimator(
        name="reinforce", weights=_reinforce, critic=False, episodic=True, update=STEP,
        discounted_return=True,
    ),
    Estimator(name="reward_to_go", weights=_reward_to_go, critic=False, episodic=True, update=STEP),
    Estimator(name="baseline", weights=_baseline, critic=True, episodic=False, update=STEP),
    Estimator(name="vpg", weights=_gae, critic=True, episodic=False, update=STEP),
    Estimator(
        name="ppo", weights=_gae, critic=True, episodic=False, update=EPOCHS, normalize=True
    ),
    Estimator(
        name="npg", weights=_gae, critic=True, episodic=False, update=TRUST_REGION,
        normalize=True,
    ),
    Estimator(
        name="trpo", weights=_gae, critic=True, episodic=False, update=TRUST_REGION,
        normalize=True, line_search=True,
    ),
    Estimator(
        name="rloo", weights=_group("loo", False), critic=False, episodic=True, update=STEP,
        grouped=True, discounted_return=True,
    ),
    Estimator(
        name="grpo", weights=_group("std", True), critic=False, episodic=True, update=EPOCHS,
        grouped=True, length_scaled=True, discounted_return=True,
    ),
    Estimator(
        name="grpo_nostd", weights=_group("mean", False), critic=False, episodic=True,
        update=EPOCHS, grouped=True, length_scaled=True, discounted_return=True,
    ),
    Estimator(
        name="cispo", weights=_group("std", False), critic=False, episodic=True,
        update=cispo.KIND, grouped=True, length_scaled=True, discounted_return=True,
    ),
    Estimator(
        name="gspo", weights=_group("std", True), critic=False, episodic=True,
        update=gspo.KIND, grouped=True, length_scaled=True, discounted_return=True,
    ),
    Estimator(
        name="dapo", weights=dapo.WEIGHTS, critic=False, episodic=True, update=dapo.KIND,
        grouped=True, length_scaled=True, discounted_return=True,
    ),
    Estimator(
        name="reinforce_pp", weights=_reward_to_go, critic=False, episodic=True,
        update=EPOCHS, normalize=True,
    ),
)  # fmt: skip

#: The one table of estimators: everything else (Config validation, the update,
#: the CLI's choices, the variance tools, the docs' tests) reads it.
#: :func:`register` adds rows.
REGISTRY: dict[str, Estimator] = {e.name: e for e in _ROWS}
BUILTIN: tuple[str, ...] = tuple(REGISTRY)
_ENTRY_POINTS_LOADED = False


class Names(Sequence):
    """The names of the registered estimators, a live read-only view of :data:`REGISTRY`.

    Args:
      where: keep only the rows for which ``where(row)`` is true (default: all).
    """

    def __init__(self, where: Callable[[Estimator], bool] | None = None) -> None:
        self._where = where

    def _names(self) -> tuple[str, ...]:
        _load_entry_points()
        return tuple(n for n, e in REGISTRY.items() if self._where is None or self._where(e))

    def __getitem__(self, i: Any) -> Any:
        return self._names()[i]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __contains__(self, name: object) -> bool:
        if name not in REGISTRY:  # installed entry points are loaded on a miss only
            _load_entry_points()
        row = REGISTRY.get(name) if isinstance(name, str) else None
        return row is not None and (self._where is None or self._where(row))

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, Sequence) else other)

    def __hash__(self) -> int:
        return hash(self._names())

    def __repr__(self) -> str:
        return repr(self._names())


#: The names of the registered estimators (built-in ones first, then those
#: :func:`register` and installed entry points added), read live.
ESTIMATORS: Sequence[str] = Names()


def _load_entry_points() -> None:
    """Load the estimators installed packages offer in the ``jaxpg.estimators`` group.

    An entry point ``name = "pkg.module:obj"`` is loaded (importing
    ``pkg.module``, which may call :func:`register` itself); if ``obj`` is an
    :class:`Estimator` whose name is not registered yet, it is registered.
    """
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="jaxpg.estimators"):
        if ep.name in REGISTRY:
            continue
        obj = ep.load()
        if isinstance(obj, Estimator) and obj.name not in REGISTRY:
            REGISTRY[obj.name] = obj


_OPTIONS = ("normalize", "line_search", "grouped", "length_scaled", "discounted_return")


def register(
    name: str,
    weights: Callable[..., Weights],
    *,
    critic: bool,
    episodic: bool,
    update: str | UpdateKind,
    overwrite: bool = False,
    **options: bool,
) -> Estimator:
    """Add an estimator from your own code; ``Config(estimator=name)`` then accepts it.

    After this, ``make_train``, ``make_update``, sweeps, :func:`batch_gradient`
    and :func:`jaxpg.variance.per_trajectory_gradients` take ``name`` like a
    built-in. For the command line, register from the module named by
    ``--env-module`` (imported before the options are checked) or from an
    installed package's ``jaxpg.estimators`` entry point.

    Args:
      name: the new ``Config.estimator`` value (a non-empty identifier).
      weights: ``(reward, values, next_values, terminated, truncated, *, gamma,
        lam) -> Weights``, the built-ins' signature (arrays ``[T, ...]``, the
        rules of :mod:`jaxpg.returns`); with ``grouped=True`` also a
        ``group_size`` keyword. Apply no ``stop_gradient``: the surrogates do.
      critic: train a value network; ``values``/``next_values`` are then
        V(s_t)/V(s'_t) of the pre-update critic (zeros otherwise), and
        ``Weights.value_target`` must be the critic's regression target.
      episodic: needs complete episodes (``rollout="auto"`` then rolls out one
        episode per env); ``False`` needs ``critic=True`` to bootstrap cut
        segments.
      update: ``"step"``, ``"epochs"``, ``"trust_region"`` or a
        :class:`jaxpg.updates.UpdateKind` of your own.
      overwrite: replace an existing row of that name (built-ins included).
      **options: the other :class:`Estimator` fields: ``normalize``,
        ``line_search``, ``grouped``, ``length_scaled``, ``discounted_return``
        (booleans, default False).

    Returns:
      The registered :class:`Estimator` row.

    Raises:
      ValueError: a taken name (without ``overwrite``), a bad field, or an
        unknown option, naming it.

    Example:
      >>> def half_rtg(reward, values, next_values, terminated, truncated, *, gamma, lam):
      ...     w = _reward_to_go(reward, values, next_values, terminated, truncated,
      ...                       gamma=gamma, lam=lam)
      ...     return Weights(0.5 * w.psi, None)
      >>> register("half_rtg", half_rtg, critic=False, episodic=True, update="step").update.name
      'step'
      >>> del REGISTRY["half_rtg"]
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"register: name={name!r} is invalid: must be an identifier string")
    if name in ESTIMATORS and not overwrite:
        raise ValueError(
            f"register: estimator {name!r} is already registered "
            "(pass overwrite=True to replace it)"
        )
    if not callable(weights):
        raise ValueError(f"register: weights for {name!r} must be callable")
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ValueError(
            f"register: option {unknown[0]!r} is unknown; allowed: {', '.join(_OPTIONS)}"
        )
    flags = {"critic": critic, "episodic": episodic, **options}
    for field, value in flags.items():
        if not isinstance(value, bool):
            raise ValueError(f"register: {field}={value!r} is invalid: must be True or False")
    kind = updates.resolve(update)
    if not critic and not episodic:
        raise ValueError(
            f"register: estimator {name!r} needs critic=True or episodic=True (without a "
            "critic nothing can bootstrap a cut segment)"
        )
    if kind.needs_critic and not critic:
        raise ValueError(f"register: update={kind.name!r} fits a critic: it needs critic=True")
    row = Estimator(name=name, weights=weights, update=kind, **flags)
    REGISTRY[name] = row
    return row


def info(estimator: str) -> Estimator:
    """The registry row of ``estimator``.

    Args:
      estimator: an estimator name (one of :data:`ESTIMATORS`).

    Returns:
      Its :class:`Estimator` from :data:`REGISTRY`.

    Raises:
      ValueError: naming the allowed estimators.

    Example:
      >>> info("ppo").update.name
      'epochs'
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator={estimator!r} is unknown; allowed: {', '.join(ESTIMATORS)}")
    return REGISTRY[estimator]


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
      reward: r_t ``[T, ...]`` float32.
      values: V(s_t) ``[T, ...]`` (ignored by the critic-free estimators, which
        require complete episodes).
      next_values: V(s'_t) ``[T, ...]``, s'_t the true next observation (ignored
        likewise).
      terminated: ``[T, ...]`` bool, true terminations.
      truncated: ``[T, ...]`` bool, cuts (time limits, segment ends).
      gamma: discount γ, a float or a traced scalar.
      lam: GAE λ, a float or a traced scalar.
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


def batch_weights(
    estimator: str,
    reward: Array,
    values: Array,
    next_values: Array,
    terminated: Array,
    truncated: Array,
    mask: Array,
    *,
    gamma: float | Array,
    lam: float | Array,
    group_size: int = 1,
    normalize_advantages: bool | None = None,
) -> Weights:
    """Ψ_t as the trainer uses it: :func:`weights`, then advantage normalisation.

    Args:
      estimator: a registered name.
      reward: r_t ``[T, B]`` (as :func:`weights`).
      values: V(s_t) ``[T, B]``.
      next_values: V(s'_t) ``[T, B]``.
      terminated: ``[T, B]`` bool.
      truncated: ``[T, B]`` bool.
      mask: ``[T, B]`` float 0/1, the steps that count in the normalisation.
      gamma: discount γ, a float or a traced scalar.
      lam: GAE λ, a float or a traced scalar.
      group_size: G of the grouped estimators.
      normalize_advantages: normalise Ψ over the masked batch (:func:`normalize`);
        ``None`` takes the estimator's default (``Estimator.normalize``).

    Returns:
      :class:`Weights`: ``psi`` ``[T, B]`` and the critic target (``None``
      without a critic).
    """
    w = weights(
        estimator, reward, values, next_values, terminated, truncated,
        gamma=gamma, lam=lam, group_size=group_size,
    )  # fmt: skip
    on = info(estimator).normalize if normalize_advantages is None else normalize_advantages
    return Weights(normalize(w.psi, mask) if on else w.psi, w.value_target)


class BatchGradient(NamedTuple):
    """One estimator's estimate on one batch (:func:`batch_gradient`)."""

    weights: Weights  # Ψ_t [T, B] (normalised if asked) and the critic target
    surrogate: Array  # float32 scalar L(θ) at the given parameters
    gradient: Any  # ∇_θ L(θ), a pytree like the parameters


def batch_gradient(
    estimator: str,
    policy: Callable[[Any, Array], Any],
    params: Any,
    obs: Array,
    action: Array,
    old_log_prob: Array,
    reward: Array,
    terminated: Array,
    truncated: Array,
    values: Array | None = None,
    next_values: Array | None = None,
    mask: Array | None = None,
    *,
    gamma: float | Array,
    lam: float | Array = 1.0,
    clip_eps: float | Array = 0.2,
    group_size: int = 1,
    normalize_advantages: bool | None = None,
    episodes: bool | None = None,
) -> BatchGradient:
    """Any registered estimator's weights, surrogate and policy gradient on one batch.

    The same code path as the trainer's first optimizer step: Ψ from
    :func:`batch_weights`, then the estimator's update kind's surrogate
    (:attr:`jaxpg.updates.UpdateKind.surrogate` with its normaliser), so
    ``gradient`` is what the trainer ascends at θ = the behaviour policy
    (``step``: (1/N) Σ_i Σ_t ∇log π·Ψ for N complete episodes, the per-step mean
    for segments; ``epochs``/``trust_region``: the masked per-step mean, whose
    gradient at θ_old equals that of the clipped/ratio objective). The critic
    loss and entropy bonus are not included.

    Args:
      estimator: a registered name (:data:`ESTIMATORS`).
      policy: ``(params, obs) -> dist`` (logits for discrete actions, as
        :func:`jaxpg.networks.log_prob` takes them).
      params: the policy parameters θ (differentiated).
      obs: ``[T, B, *obs_shape]`` float32, time-major.
      action: ``[T, B]`` int32 (discrete) or ``[T, B, d]``.
      old_log_prob: log π_old(a_t|s_t) of the behaviour policy ``[T, B]``.
      reward: r_t ``[T, B]`` float32.
      terminated: ``[T, B]`` bool, true terminations.
      truncated: ``[T, B]`` bool, cuts (bootstrapped by critic estimators).
      values: V(s_t) ``[T, B]`` of the critic (required by critic estimators;
        zeros otherwise).
      next_values: V(s'_t) ``[T, B]``, likewise.
      mask: ``[T, B]`` float 0/1 (default all ones).
      gamma: discount γ, a float or a traced scalar.
      lam: GAE λ, a float or a traced scalar.
      clip_eps: PPO's ε (``epochs`` estimators), a float or a traced scalar.
      group_size: G of the grouped estimators (B = groups × G, group-major).
      normalize_advantages: as :func:`batch_weights`.
      episodes: each column is one complete episode (``step``'s per-episode
        normaliser); default ``Estimator.episodic`` (what ``rollout="auto"`` does).

    Returns:
      :class:`BatchGradient`.

    Example:
      >>> logits = lambda p, o: o @ p  # a linear policy on 2 features, 2 actions
      >>> obs = jnp.ones((3, 1, 2)); act = jnp.zeros((3, 1), jnp.int32)
      >>> r = jnp.array([[1.0], [0.0], [1.0]]); f = jnp.zeros((3, 1), bool)
      >>> out = batch_gradient("reward_to_go", logits, jnp.zeros((2, 2)), obs, act,
      ...     jnp.log(jnp.full((3, 1), 0.5)), r, f.at[-1].set(True), f, gamma=1.0)
      >>> out.weights.psi[:, 0].tolist()  # G_t = 2, 1, 1
      [2.0, 1.0, 1.0]
      >>> float(out.gradient[0, 0])  # Σ_t G_t ∂log π(a=0)/∂θ_00 = 4 · (1 − 0.5)
      2.0
    """
    from jaxpg import networks  # flax: only when a gradient is asked for

    entry = info(estimator)
    if entry.critic and (values is None or next_values is None):
        raise ValueError(f"estimator={estimator!r} has a critic: pass values and next_values")
    zeros = jnp.zeros_like(reward)
    values = zeros if values is None else values
    next_values = zeros if next_values is None else next_values
    mask = jnp.ones_like(reward) if mask is None else mask
    w = batch_weights(
        estimator, reward, values, next_values, terminated, truncated, mask,
        gamma=gamma, lam=lam, group_size=group_size,
        normalize_advantages=normalize_advantages,
    )  # fmt: skip
    kind = entry.update
    divisor = kind.normalizer(mask, entry.episodic if episodes is None else episodes)

    def objective(p: Any) -> Array:
        logp = networks.log_prob(policy(p, obs), action)
        return kind.surrogate(logp, old_log_prob, w.psi, mask, clip_eps, divisor)[0]

    value, grad = jax.value_and_grad(objective)(params)
    return BatchGradient(w, value, grad)
