"""Gradient-variance tools: per-trajectory gradients, exact references, metrics.

Submodules:

* :mod:`~jaxpg.variance.gradients`: sampling complete episodes (one key per
  trajectory, or per group of G from one start state for ``rloo``/``grpo``/
  ``grpo_nostd``) and per-trajectory gradients ``[K, d]`` of every estimator
  on the same trajectories.
* :mod:`~jaxpg.variance.natural_cos`: the cosine of the sampled ``npg``
  direction with the exact natural gradient of a tabular MDP, against N.
* :mod:`~jaxpg.variance.tabular`: small MDPs with exact J, ∇J and exact
  estimator moments by enumeration, plus a gymnax wrapper.
* :mod:`~jaxpg.variance.metrics`: tr Σ, noise scale, cosines, bias, bootstrap.
* :mod:`~jaxpg.variance.batch_baselines`: same-batch baselines (biased ones too).
* :mod:`~jaxpg.variance.vstar`: a time-aware critic V*(s, t) fit on a fresh pool.
* :mod:`~jaxpg.variance.report`: CSV/markdown tables and matplotlib figures.
* :mod:`~jaxpg.variance.experiment`: the CartPole experiment behind
  ``jaxpg variance`` (imported lazily; it trains PPO).
"""

from jaxpg.variance import batch_baselines, gradients, metrics, tabular
from jaxpg.variance.gradients import (
    GROUP_KINDS,
    KINDS,
    Estimator,
    gradients_from_weights,
    group_means,
    per_trajectory_gradients,
    pool_gradients,
    sample_episodes,
)

__all__ = [
    "GROUP_KINDS",
    "KINDS",
    "Estimator",
    "batch_baselines",
    "gradients",
    "gradients_from_weights",
    "group_means",
    "metrics",
    "per_trajectory_gradients",
    "pool_gradients",
    "sample_episodes",
    "tabular",
]
