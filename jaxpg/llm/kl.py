"""KL estimators to a frozen reference policy: k1, k2, k3, and the exact KL beside them.

For an action a ~ π_θ(·|s) and the log-ratio ℓ = log π_θ(a|s) − log π_ref(a|s)
(r = π_ref/π_θ = e^{−ℓ}):

* k1 = ℓ,          E_π[k1] = KL(π‖π_ref) (unbiased, can be negative);
* k2 = ℓ²/2,       E_π[k2] = ½ E_π[ℓ²] (≈ KL to second order; biased);
* k3 = (r − 1) + ℓ, E_π[k3] = KL(π‖π_ref) (unbiased and ≥ 0).

Placed **in the loss** (the estimate differentiated at the sampled a, sampling
not differentiated), their expected gradients differ (arXiv 2506.09477):
E[∇k1] = E[∇log π] = 0; E[∇k2] = E[ℓ∇log π] = ∇KL(π‖π_ref), the reverse KL;
E[∇k3] = E[(1 − r)∇log π] = −Σ_a π_ref ∇log π = ∇KL(π_ref‖π), the forward KL.
Placed **in the reward** (a penalty −β·sg(k) whose gradient is the score
function E[∇log π · k]): k1 gives ∇KL(π‖π_ref); k3 gives
∇KL(π‖π_ref) − ∇KL(π_ref‖π); k2 gives ½E[ℓ²∇log π], no KL's gradient.
``tests/test_llm.py`` checks the three expected values and all six expected
gradients against the exact KLs of a categorical policy by enumeration.

These are the building blocks; the trainer does not use them yet (a traced
``kl_coef`` and the reference parameters in the train state are not built).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array

KL_ESTIMATORS: tuple[str, ...] = ("k1", "k2", "k3")


def kl_estimate(log_prob: Array, ref_log_prob: Array, estimator: str) -> Array:
    """The per-token estimate k1, k2 or k3 of KL(π_θ‖π_ref) at the sampled actions.

    Args:
      log_prob: log π_θ(a_t|s_t), any shape (differentiated in the loss placement).
      ref_log_prob: log π_ref(a_t|s_t), same shape (the frozen reference; not
        differentiated).
      estimator: ``"k1"``, ``"k2"`` or ``"k3"``.

    Returns:
      The estimates, ``log_prob``'s shape.

    Raises:
      ValueError: an unknown ``estimator``, naming the allowed ones.

    Example:
      >>> lp, ref = jnp.log(jnp.array([0.5])), jnp.log(jnp.array([0.25]))
      >>> [round(float(kl_estimate(lp, ref, k)[0]), 4) for k in KL_ESTIMATORS]
      [0.6931, 0.2402, 0.1931]
    """
    if estimator not in KL_ESTIMATORS:
        raise ValueError(
            f"kl_estimator={estimator!r} is invalid: allowed: {', '.join(KL_ESTIMATORS)}"
        )
    log_ratio = log_prob - jax.lax.stop_gradient(ref_log_prob)
    if estimator == "k1":
        return log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio**2
    return jnp.exp(-log_ratio) - 1.0 + log_ratio


def exact_kl(logits: Array, ref_logits: Array) -> Array:
    """The true KL(π‖π_ref) = Σ_a π(a|s) log(π(a|s)/π_ref(a|s)) of categorical policies.

    The metric to report beside an estimate on a batch of states.

    Args:
      logits: π's logits ``[..., A]``.
      ref_logits: π_ref's logits ``[..., A]``.

    Returns:
      KL per state ``[...]`` float32 (≥ 0).

    Example:
      >>> p, ref = jnp.log(jnp.array([0.5, 0.5])), jnp.log(jnp.array([0.25, 0.75]))
      >>> round(float(exact_kl(p, ref)), 4)  # ½ log 2 + ½ log(2/3)
      0.1438
    """
    logp = jax.nn.log_softmax(logits, axis=-1)
    ref = jax.nn.log_softmax(ref_logits, axis=-1)
    return jnp.sum(jnp.exp(logp) * (logp - ref), axis=-1)
