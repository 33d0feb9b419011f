"""E5b: the direction of PPO's whole inner loop from a frozen checkpoint.

From a checkpoint (policy, critic and Adam state), one call of jaxpg's own
compiled update (:func:`jaxpg.make_update`, public API) rolls out N complete
episodes (``rollout="episodes"``: one fresh episode per env, so the rollout size
is counted in trajectories like every other estimator here) and runs
``num_epochs × num_minibatches`` clipped Adam steps. The measured direction is
Δθ = θ_policy,new − θ_policy,old; its cosine to the reference gradient g_ref
(target T1) is the analogue of Ilyas et al.'s (2020) "steps" measurement. It is
a direction only: its scale is set by Adam and the learning rate.

Nothing is re-implemented: the Config is the training run's own with
``num_envs = N`` and ``rollout = "episodes"``. One caveat belongs to the
update, not to this module: gradients are clipped by the *joint* global norm of
policy and critic gradients, so the critic's loss changes the policy step's
length (not its direction within one minibatch step).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from jaxpg.config import Config


@functools.lru_cache(maxsize=16)
def _programs(cfg: Config):
    """``(init, update)`` of jaxpg's public API, built once per config (one compile)."""
    import jaxpg

    return jaxpg.make_init(cfg), jaxpg.make_update(cfg)


def step_directions(
    key: jax.Array,
    config: Config,
    params: dict,
    opt_state: Any,
    rollout_size: int,
    num_seeds: int,
) -> np.ndarray:
    """Δθ of the policy after one full PPO update, for ``num_seeds`` rollouts.

    Args:
      key: PRNG key; seed r uses ``fold_in(key, r)`` for its envs and rollout.
      config: the training config (PPO); ``num_envs`` and ``rollout`` are replaced.
      params: checkpoint ``{"policy": ..., "value": ...}``.
      opt_state: the checkpoint's optimizer state (None: a fresh one).
      rollout_size: N, complete episodes per update.
      num_seeds: independent rollouts.

    Returns:
      ``[num_seeds, d]`` float64 flattened policy steps.
    """
    cfg = config.replace(
        num_envs=int(rollout_size),
        rollout="episodes",
        total_timesteps=max(config.total_timesteps, int(rollout_size) * 500),
    )
    init, update = _programs(cfg)
    hp = cfg.hparams()
    old = np.asarray(ravel_pytree(params["policy"])[0], np.float64)
    out = []
    for r in range(num_seeds):
        state = init(jax.random.fold_in(key, r))
        state = state.replace(
            params=params, opt_state=state.opt_state if opt_state is None else opt_state
        )
        new, _ = update(state, hp)
        out.append(np.asarray(ravel_pytree(new.params["policy"])[0], np.float64) - old)
    return np.stack(out)


def measure(
    key: jax.Array,
    config: Config,
    params: dict,
    opt_state: Any,
    g_ref: jax.Array,
    rollout_sizes: Sequence[int],
    num_seeds: int,
    g_own: jax.Array | None = None,
) -> list[dict]:
    """Cosine of Δθ to g_ref, and between seeds, for each rollout size.

    Args:
      key, config, params, opt_state: as in :func:`step_directions`.
      g_ref: ``[d]`` the T1 reference gradient.
      rollout_sizes: N values.
      num_seeds: rollouts per N.
      g_own: optional ``[d]`` mean gradient of PPO's own (unnormalised)
        GAE(γ, λ) target from an independent pool, reported as ``cos_own``.

    Returns:
      one dict per N: ``N``, ``seeds``, ``cos_ref`` (mean over seeds) with its
      ``_lo``/``_hi`` (mean ± 1.96 SE), ``cos_ref_all`` (every seed),
      ``pairwise_cos`` (mean over pairs of seeds), ``step_norm`` and ``cos_own``.
    """
    ref = np.asarray(g_ref, np.float64)
    ref = ref / np.linalg.norm(ref)
    own = None if g_own is None else np.asarray(g_own, np.float64)
    rows = []
    for n in rollout_sizes:
        d = step_directions(
            jax.random.fold_in(key, int(n)), config, params, opt_state, n, num_seeds
        )
        norms = np.linalg.norm(d, axis=1)
        cos = d @ ref / np.maximum(norms, 1e-300)
        unit = d / np.maximum(norms, 1e-300)[:, None]
        pair = unit @ unit.T
        se = cos.std(ddof=1) / np.sqrt(len(cos)) if len(cos) > 1 else float("nan")
        rows.append(
            {
                "N": int(n),
                "seeds": int(num_seeds),
                "cos_ref": float(cos.mean()),
                "cos_ref_lo": float(cos.mean() - 1.96 * se),
                "cos_ref_hi": float(cos.mean() + 1.96 * se),
                "cos_ref_all": [float(c) for c in cos],
                "pairwise_cos": float(pair[~np.eye(len(cos), dtype=bool)].mean())
                if len(cos) > 1
                else float("nan"),
                "step_norm": float(norms.mean()),
                "cos_own": float("nan")
                if own is None
                else float(np.mean(d @ own / np.maximum(norms * np.linalg.norm(own), 1e-300))),
            }
        )
    return rows
