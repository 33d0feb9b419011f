"""Render one episode of a policy to a GIF: gymnax's visualizer, or the suite's renderer.

gymnax ids draw through gymnax's ``Visualizer`` (:data:`SUPPORTED`); suite ids
(``navix/...``, ``craftax/...``, ``jumanji/...``, ``brax/...``) through each suite's
own renderer (:mod:`jaxpg.suites.render`).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp

from jaxpg import envs, networks, normalization, suites
from jaxpg.config import Config
from jaxpg.runspec import make_runspec

# Environments gymnax's Visualizer draws (gymnax 1.0). The classic-control ones
# render through gymnasium, which needs pygame.
SUPPORTED = (
    "Acrobot-v1",
    "CartPole-v1",
    "Pendulum-v1",
    "MountainCar-v0",
    "MountainCarContinuous-v0",
    "Catch-bsuite",
    "Asterix-MinAtar",
    "Breakout-MinAtar",
    "Freeway-MinAtar",
    "Seaquest-MinAtar",
    "SpaceInvaders-MinAtar",
    "Pong-misc",
    "PointRobot-misc",
    "MetaMaze-misc",
    "FourRooms-misc",
)
CLASSIC = SUPPORTED[:5]


def episode_states(
    config: Config,
    params,
    key: jax.Array,
    greedy: bool = False,
    max_steps: int = 1000,
    obs_norm: normalization.RunningStats | None = None,
):
    """Run one episode on the host, one jitted step at a time, recording its states.

    Args:
      config: the run's configuration (env, networks).
      params: the model's parameters (``TrainState.params``).
      key: PRNG key of the reset, the actions and the env steps.
      greedy: act with the most likely action (the mean for Gaussians).
      max_steps: at most this many steps (every state is kept in memory for the GIF).
      obs_norm: the trained observation statistics (``normalize_obs`` runs), frozen.

    Returns:
      ``(env, env_params, states, rewards)``: the environment and its params, the
      env states from the reset up to the one before the step that ended the
      episode, and the cumulative reward at each of those states (a list of
      Python floats starting at 0.0, as gymnax's ``Visualizer`` wants them).
    """
    run = make_runspec(config)
    model = normalization.with_obs_norm(run.model, obs_norm)
    env, env_params, spec = run.env, run.env_params, run.spec

    @jax.jit
    def act_step(key, state, obs, hidden):
        k_act, k_env = jax.random.split(key)
        if run.recurrent:
            dist, _, hidden = model.step(params, hidden, obs[None])
        else:
            dist = model.policy(params, obs[None])
        if greedy:
            action = (
                dist.mean
                if isinstance(dist, networks.Gaussian)
                else jnp.argmax(dist, axis=-1).astype(jnp.int32)
            )
        else:
            action = networks.sample(k_act, dist)
        out = envs.step(k_env, env, env_params, spec, state, action[0])
        done = jnp.logical_or(out.terminated, out.truncated)
        return out.obs, out.state, out.reward, done, hidden

    key, k_reset = jax.random.split(key)
    obs, state = envs.reset(k_reset, env, env_params)
    states, rewards, total = [state], [0.0], 0.0
    hidden = model.initial_state(1) if run.recurrent else None
    limit = min(spec.max_episode_steps or max_steps, max_steps)  # memory: every state is kept
    for _ in range(limit):
        key, k = jax.random.split(key)
        obs, next_state, reward, done, hidden = act_step(k, state, obs, hidden)
        total += float(reward)
        if bool(done):
            break
        state = next_state
        states.append(state)
        rewards.append(total)
    return run.env, run.env_params, states, rewards


def check_supported(env_id: str) -> None:
    """Raise ``ValueError`` naming what is missing if ``env_id`` cannot be rendered.

    Args:
      env_id: the environment id.

    Raises:
      ValueError: ``env_id`` is not in :data:`SUPPORTED`, or it is a classic
        control env and pygame is not installed, or it is a suite id whose suite
        cannot render here (:func:`jaxpg.suites.render.check`).
    """
    if suites.is_suite_id(env_id):
        from jaxpg.suites import render as suite_render

        suite_render.check(env_id)
        return
    if env_id not in SUPPORTED:
        raise ValueError(
            f"--gif: gymnax's visualizer cannot draw {env_id}; supported: "
            f"{', '.join(SUPPORTED)}, and suite ids ({', '.join(suites.SUITES)})"
        )
    if env_id in CLASSIC:
        import os

        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # no greeting on stdout
        try:
            import pygame  # noqa: F401
        except ImportError:
            raise ValueError(
                f"--gif: drawing {env_id} goes through gymnasium, which needs pygame "
                '(pip install "jaxpg[render]")'
            ) from None


def render_gif(
    config: Config, params, path: Path, seed: int = 0, greedy: bool = False, obs_norm=None
) -> Path:
    """Render one episode of the policy to ``path`` (a .gif); clear errors if unsupported.

    gymnax ids draw with gymnax's ``Visualizer``; suite ids with the suite's own
    renderer (:mod:`jaxpg.suites.render`, at most its ``MAX_FRAMES`` states).

    Args:
      config: the run's configuration.
      params: the model's parameters.
      path: the GIF to write (atomically).
      seed: seed of the episode's PRNG key.
      greedy: act with the most likely action.
      obs_norm: the trained observation statistics, if the run normalises them.

    Returns:
      ``path``.

    Raises:
      ValueError: the env cannot be rendered (:func:`check_supported`).
      WriteFailed: the GIF could not be written.
    """
    check_supported(config.env)
    if suites.is_suite_id(config.env):
        return _render_suite_gif(config, params, path, seed, greedy, obs_norm)
    import matplotlib

    matplotlib.use("Agg")
    from gymnax.visualize import Visualizer

    from jaxpg.files import write_bytes_atomic

    env, env_params, states, rewards = episode_states(
        config, params, jax.random.key(seed), greedy, obs_norm=obs_norm
    )
    tmp = path.with_name(f".{path.stem}.render.gif")
    try:
        Visualizer(env, env_params, states, rewards).animate(str(tmp))
        write_bytes_atomic(path, tmp.read_bytes())
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _render_suite_gif(config: Config, params, path: Path, seed, greedy, obs_norm) -> Path:
    """:func:`render_gif` for a suite id: the suite's own frames, encoded with Pillow."""
    from jaxpg.files import write_bytes_atomic
    from jaxpg.suites import render as suite_render

    env, _, states, _ = episode_states(
        config, params, jax.random.key(seed), greedy, obs_norm=obs_norm
    )
    frames, duration = suite_render.frames(config.env, env, states)
    write_bytes_atomic(path, suite_render.gif_bytes(frames, duration))
    return path
