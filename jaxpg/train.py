"""One program per run: ``train(key)`` is an outer ``lax.scan`` of updates.

The returned function is pure, so ``jax.jit(train)`` compiles the whole run and
``jax.vmap(train)`` over keys (and over :class:`HParams`) trains many runs in one
program.
"""

from __future__ import annotations

from typing import NamedTuple

import jax

from jaxpg.config import Config, HParams
from jaxpg.update import TrainState, init_state, make_agent, update


class TrainOutput(NamedTuple):
    state: TrainState  # final state (params, optimizer, envs, key)
    metrics: dict  # per-update metrics, each ``[num_updates]``


def make_train(config: Config, env=None, env_params=None):
    """Return a pure ``train(key, hparams=None) -> TrainOutput`` for ``config``.

    ``hparams`` defaults to ``config.hparams()``; pass an :class:`HParams` (or
    vmap over one) to sweep learning rate, γ, λ, clip ε and coefficients without
    recompiling. Metrics include ``episode_return`` (mean return of the
    episodes finished in each update; NaN until one finishes), ``env_steps``,
    ``policy_loss``, ``value_loss``, ``entropy``, ``approx_kl``, ``clip_frac``,
    ``grad_norm`` and ``lr``.

    On a small CPU, ``jax.vmap`` over whole runs can deadlock XLA:CPU's worker
    threads in the batched QR of the orthogonal initialisation; ``jaxpg.sweep``
    avoids it by initialising runs one at a time.

    Example:
      >>> import jax, jaxpg
      >>> cfg = jaxpg.Config(num_envs=2, num_steps=16, total_timesteps=64)
      >>> out = jax.jit(jaxpg.make_train(cfg))(jax.random.key(0))
      >>> out.metrics["episode_return"].shape
      (2,)
    """
    agent = make_agent(config, env, env_params)

    def train(key: jax.Array, hparams: HParams | None = None) -> TrainOutput:
        hp = config.hparams() if hparams is None else hparams
        state = init_state(agent, key)
        body = lambda s, _: update(agent, s, hp)  # noqa: E731
        state, metrics = jax.lax.scan(body, state, None, length=agent.num_updates)
        return TrainOutput(state, metrics)

    train.num_updates = agent.num_updates
    return train
