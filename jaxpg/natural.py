"""Natural-gradient and trust-region policy steps: Fisher-vector products, CG, line search.

The natural gradient preconditions the policy gradient ĝ by the inverse Fisher
matrix F(θ) = E_s E_{a∼π_θ}[∇log π ∇log πᵀ], which is also the Hessian at θ_old
of the mean KL divergence D̄(θ) = E_s[KL(π_old(·|s) ‖ π_θ(·|s))]. Everything here
works on parameter pytrees without forming F:

* :func:`fisher_vector_product`: (F + λI)v as the Hessian-vector product of D̄
  (forward-over-reverse autodiff, one extra backward pass);
* :func:`conjugate_gradient`: a fixed number of CG iterations for (F + λI)x = ĝ,
  with the final residual ‖ĝ − (F + λI)x‖ reported;
* :func:`natural_step`: x scaled to √(2δ / xᵀ(F + λI)x), the step whose quadratic
  KL model equals the trust-region size δ;
* :func:`line_search`: TRPO's backtracking: the first of the steps βᵏ·s
  (k = 0 … K−1, β = ``backtrack_ratio``) whose surrogate gain is > 0 and whose
  measured mean KL is ≤ δ, or no step. All K candidates are evaluated in one
  batched pass (no data-dependent loop), so the whole step is jit- and vmap-safe
  and δ may be a traced scalar.

The KL divergences (:func:`kl`) are exact for both of jaxpg's distributions:
categorical logits and the diagonal :class:`~jaxpg.networks.Gaussian`.
References: Kakade (2001), "A Natural Policy Gradient"; Schulman et al. (2015),
"Trust Region Policy Optimization", appendix C (the CG + line-search recipe).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxpg import losses, networks

Array = jax.Array
PyTree = Any


# --- pytree vector algebra ------------------------------------------------------


def tree_dot(a: PyTree, b: PyTree) -> Array:
    """Σ over all leaves of ⟨a, b⟩.

    Args:
      a, b: pytrees of the same structure and leaf shapes (e.g. parameters).

    Returns:
      A scalar of the leaves' dtype (float32 for parameters).

    Example:
      >>> float(tree_dot({"w": jnp.ones(3), "b": 2.0}, {"w": jnp.arange(3.0), "b": 0.5}))
      4.0
    """
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def _axpy(alpha: Array, x: PyTree, y: PyTree) -> PyTree:
    """alpha·x + y, leafwise."""
    return jax.tree.map(lambda a, b: alpha * a + b, x, y)


# --- KL divergences ---------------------------------------------------------------


def kl(old, new) -> Array:
    """KL(old ‖ new) per state for two distributions of the same kind, shape ``[...]``.

    Categorical logits: Σ_a p_old (log p_old − log p_new). Diagonal Gaussian:
    Σ_d [log σ_new − log σ_old + (σ_old² + (μ_old − μ_new)²) / (2σ_new²) − ½].

    Args:
      old, new: categorical logits ``[..., A]`` float32, or two
        :class:`~jaxpg.networks.Gaussian` with ``mean [..., D]`` (``log_std``
        broadcastable to it).

    Returns:
      ``[...]`` float32: the KL of each state, summed over actions or dimensions.
    """
    if isinstance(old, networks.Gaussian):
        log_std_old = jnp.broadcast_to(old.log_std, old.mean.shape)
        log_std_new = jnp.broadcast_to(new.log_std, new.mean.shape)
        var_old = jnp.exp(2.0 * log_std_old)
        var_new = jnp.exp(2.0 * log_std_new)
        per_dim = (
            log_std_new
            - log_std_old
            + (var_old + (old.mean - new.mean) ** 2) / (2.0 * var_new)
            - 0.5
        )
        return jnp.sum(per_dim, axis=-1)
    logp_old = jax.nn.log_softmax(old, axis=-1)
    logp_new = jax.nn.log_softmax(new, axis=-1)
    return jnp.sum(jnp.exp(logp_old) * (logp_old - logp_new), axis=-1)


# --- Fisher-vector products and conjugate gradient -------------------------------------


def fisher_vector_product(
    mean_kl: Callable[[PyTree], Array], params: PyTree, v: PyTree, damping: float | Array
) -> PyTree:
    """(F + λI)v, F the Hessian of ``mean_kl`` at ``params`` (the Fisher matrix there).

    ``mean_kl(θ)`` must be the mean KL(π_old ‖ π_θ) with π_old held fixed at
    ``params`` (so its gradient vanishes there and its Hessian is the Fisher
    matrix of the state-averaged policy).

    Args:
      mean_kl: ``θ -> scalar``.
      params: θ_old, any pytree.
      v: a pytree like ``params``.
      damping: λ ≥ 0, added times ``v``.

    Returns:
      A pytree like ``params``.
    """
    _, hvp = jax.jvp(jax.grad(mean_kl), (params,), (v,))
    return _axpy(jnp.asarray(damping, jnp.float32), v, hvp)


class CGResult(NamedTuple):
    x: PyTree  # the approximate solution, like b
    residual: Array  # ‖b − A x‖ after the last iteration (from the CG recursion)


def conjugate_gradient(matvec: Callable[[PyTree], PyTree], b: PyTree, iters: int) -> CGResult:
    """Solve A x = b for symmetric positive-definite A with ``iters`` CG iterations.

    Starts at x = 0. The iteration count is fixed (a ``lax.scan``), so the cost
    is exactly ``iters`` products with A; where the residual has reached zero
    the later iterations change nothing.

    Args:
      matvec: ``v -> A v`` on pytrees like ``b``.
      b: the right-hand side (any pytree of float arrays).
      iters: number of iterations (static, ≥ 1).

    Returns:
      :class:`CGResult`: ``x`` and the residual norm ‖r‖ of the recursion.

    Example:
      >>> import jax.numpy as jnp
      >>> a = jnp.array([[4.0, 1.0], [1.0, 3.0]])
      >>> out = conjugate_gradient(lambda v: a @ v, jnp.array([1.0, 2.0]), iters=2)
      >>> [round(float(v), 4) for v in out.x]  # a⁻¹b = (1/11, 7/11)
      [0.0909, 0.6364]
    """
    x = jax.tree.map(jnp.zeros_like, b)
    r = b
    p = b
    rr = tree_dot(r, r)

    def body(carry, _):
        x, r, p, rr = carry
        ap = matvec(p)
        pap = tree_dot(p, ap)
        alpha = jnp.where(pap > 0, rr / jnp.where(pap > 0, pap, 1.0), 0.0)
        x = _axpy(alpha, p, x)
        r = _axpy(-alpha, ap, r)
        rr_new = tree_dot(r, r)
        beta = jnp.where(rr > 0, rr_new / jnp.where(rr > 0, rr, 1.0), 0.0)
        p = _axpy(beta, p, r)
        return (x, r, p, rr_new), None

    (x, _, _, rr), _ = jax.lax.scan(body, (x, r, p, rr), None, length=iters)
    return CGResult(x, jnp.sqrt(rr))


def natural_step(x: PyTree, fx: PyTree, delta: float | Array) -> tuple[PyTree, Array]:
    """Scale the natural direction x so that its quadratic KL model equals δ.

    s = √(2δ / xᵀ(F + λI)x) · x, so ½ sᵀ(F + λI)s = δ.

    Args:
      x: the CG solution of (F + λI)x = ĝ.
      fx: (F + λI)x (one more Fisher-vector product).
      delta: δ > 0 (float or traced scalar).

    Returns:
      ``(step, xᵀFx)``.
    """
    xfx = tree_dot(x, fx)
    scale = jnp.sqrt(2.0 * delta / jnp.maximum(xfx, 1e-12))
    scale = jnp.where(xfx > 0, scale, 0.0)
    return jax.tree.map(lambda v: scale * v, x), xfx


class LineSearch(NamedTuple):
    params: PyTree  # the accepted parameters (θ_old when nothing was accepted)
    accepted: Array  # float32 1.0 or 0.0
    fraction: Array  # the accepted βᵏ (0 when none)
    gain: Array  # surrogate gain L(θ_new) − L(θ_old) of the accepted step (0 when none)
    kl: Array  # mean KL(π_old ‖ π_new) of the accepted step (0 when none)


def line_search(
    surrogate: Callable[[PyTree], Array],
    mean_kl: Callable[[PyTree], Array],
    params: PyTree,
    step: PyTree,
    delta: float | Array,
    iters: int,
    ratio: float = 0.8,
) -> LineSearch:
    """TRPO's backtracking line search over θ_old + βᵏ·step, k = 0 … iters−1.

    Accepts the first candidate with L(θ) − L(θ_old) > 0 and D̄(θ) ≤ δ; with none
    the parameters stay at θ_old. All candidates are evaluated at once
    (``vmap`` over the fractions).

    Args:
      surrogate: ``θ -> L(θ)``, the importance-weighted surrogate.
      mean_kl: ``θ -> D̄(θ)``, the mean KL from the old policy.
      params: θ_old.
      step: the full natural step (like ``params``).
      delta: δ (float or traced scalar).
      iters: number of candidates K (static, ≥ 1).
      ratio: β ∈ (0, 1).

    Returns:
      :class:`LineSearch`.
    """
    fractions = ratio ** jnp.arange(iters, dtype=jnp.float32)
    base = surrogate(params)

    def evaluate(frac):
        cand = _axpy(frac, step, params)
        return surrogate(cand) - base, mean_kl(cand)

    gains, kls = jax.vmap(evaluate)(fractions)
    ok = (gains > 0) & (kls <= delta) & jnp.isfinite(gains) & jnp.isfinite(kls)
    first = jnp.argmax(ok)  # the first True (0 when none; then ``any`` is False)
    accepted = jnp.any(ok)
    frac = jnp.where(accepted, fractions[first], 0.0)
    new = _axpy(frac, step, params)
    zero = jnp.zeros((), jnp.float32)
    return LineSearch(
        new,
        accepted.astype(jnp.float32),
        frac,
        jnp.where(accepted, gains[first], zero),
        jnp.where(accepted, kls[first], zero),
    )


# --- the policy step -------------------------------------------------------------------


class PolicyBatch(NamedTuple):
    """What the natural step needs, any leading batch shape ``[...]``."""

    obs: Array  # [..., *obs_shape]
    action: Array  # [...] int32 or [..., d]
    old_log_prob: Array  # log π_old(a|s), [...]
    adv: Array  # Â, [...]
    mask: Array  # [...] float32


class StepInfo(NamedTuple):
    """Diagnostics of one natural/trust-region step (float32 scalars)."""

    accepted: Array  # 1 if a step was taken (always 1 for npg unless the gradient is 0)
    fraction: Array  # the line search's accepted βᵏ (1 for npg)
    kl: Array  # measured mean KL(π_old ‖ π_new) on the batch
    gain: Array  # surrogate gain L(θ_new) − L(θ_old)
    cg_residual: Array  # ‖ĝ − (F + λI)x‖ after the CG iterations
    xfx: Array  # xᵀ(F + λI)x ≈ ĝᵀF⁻¹ĝ
    grad_norm: Array  # ‖ĝ‖


def trust_region_step(
    policy: Callable[[PyTree, Array], Any],
    params: PyTree,
    batch: PolicyBatch,
    delta: float | Array,
    *,
    cg_iters: int = 10,
    damping: float = 0.1,
    backtrack_iters: int = 10,
    backtrack_ratio: float = 0.8,
    line_search_on: bool = True,
) -> tuple[PyTree, StepInfo]:
    """One natural-gradient (``line_search_on=False``) or TRPO step of the policy.

    L(θ) = E[exp(log π_θ(a|s) − log π_old(a|s)) Â] over the masked batch; its
    gradient at θ_old is the policy gradient ĝ = E[∇log π Â]. The direction
    solves (F + λI)x = ĝ by CG; the step is √(2δ / xᵀ(F + λI)x)·x. NPG takes
    it whole; TRPO backtracks (:func:`line_search`).

    Parameters of ``params`` that the policy does not use (a separate critic)
    get a zero gradient and a zero Fisher row, so CG leaves them unchanged.

    Args:
      policy: ``(params, obs) -> dist`` (logits or a Gaussian).
      params: θ_old (any pytree).
      batch: :class:`PolicyBatch`.
      delta: trust-region size δ > 0 (float or traced scalar).
      cg_iters, damping, backtrack_iters, backtrack_ratio: static settings.
      line_search_on: TRPO (True) or NPG (False).

    Returns:
      ``(new params, StepInfo)``.
    """
    adv = jax.lax.stop_gradient(batch.adv)
    old_dist = jax.lax.stop_gradient(policy(params, batch.obs))

    def surrogate(p):
        logp = networks.log_prob(policy(p, batch.obs), batch.action)
        return losses.ratio_surrogate(logp, batch.old_log_prob, adv, batch.mask)

    def mean_kl(p):
        return losses.masked_mean(kl(old_dist, policy(p, batch.obs)), batch.mask)

    g = jax.grad(surrogate)(params)
    fvp = lambda v: fisher_vector_product(mean_kl, params, v, damping)  # noqa: E731
    cg = conjugate_gradient(fvp, g, cg_iters)
    step, xfx = natural_step(cg.x, fvp(cg.x), delta)
    if line_search_on:
        ls = line_search(surrogate, mean_kl, params, step, delta, backtrack_iters, backtrack_ratio)
        new, accepted, frac, gain, kl_new = ls
    else:
        new = _axpy(1.0, step, params)
        base = surrogate(params)
        gain = surrogate(new) - base
        kl_new = mean_kl(new)
        accepted = (xfx > 0).astype(jnp.float32)
        frac = accepted
    info = StepInfo(
        accepted=accepted,
        fraction=frac,
        kl=kl_new,
        gain=gain,
        cg_residual=cg.residual,
        xfx=xfx,
        grad_norm=jnp.sqrt(tree_dot(g, g)),
    )
    return new, info
