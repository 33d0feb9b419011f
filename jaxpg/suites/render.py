"""RGB frames of suite environments with each suite's own renderer (``jaxpg eval --gif``).

Every adapter keeps the suite's own state inside its state; these functions hand that
inner state to the suite's renderer and return ``uint8 [H, W, 3]`` frames:

- **Navix**: ``navix.observations.rgb`` of the Navix ``State`` (its sprites, 8 pixels
  per cell), enlarged by an integer factor (nearest neighbour) to at least 160 pixels.
- **Craftax**: Craftax's pixel renderer (``make_craftax_pixel_renderer``, Classic or
  full) of the agent's local view and inventory at 16 pixels per block, jitted once.
- **Jumanji**: the task's ``env.render(state)`` (its matplotlib viewer) drawn with the
  Agg backend, shrunk to at most 400 pixels a side.
- **Brax**: ``brax.io.image.render_array`` (MuJoCo's renderer, ``320 x 240``) through
  the model's ``track`` camera when it has one. MuJoCo needs an OpenGL context: on a
  machine without a display, loading the Brax adapter selects EGL (``MUJOCO_GL=egl``,
  :func:`prefer_headless_gl`) unless MuJoCo is imported already or ``MUJOCO_GL`` is
  set, and :func:`check` refuses with one line when no context can be opened.

The GIF is encoded in memory (:func:`gif_bytes`); the caller writes it.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from jaxpg.suites import load, split_id

#: At most this many states of an episode are drawn (the first ones).
MAX_FRAMES = 1000
_NAVIX_MIN_SIDE = 160
_JUMANJI_MAX_SIDE = 400
_BRAX_SIZE = (240, 320)  # height, width
_MIN_DURATION_MS = 20  # shorter GIF frame delays are slowed down by most viewers


def prefer_headless_gl() -> None:
    """Set ``MUJOCO_GL=egl`` when there is no display, MuJoCo is not imported yet and
    ``MUJOCO_GL`` is unset (MuJoCo reads it once, on import; its default, GLFW, needs
    a display). Called before the Brax adapter is imported."""
    if "mujoco" in sys.modules or os.environ.get("MUJOCO_GL") or os.environ.get("DISPLAY"):
        return
    os.environ["MUJOCO_GL"] = "egl"


def _brax_gl() -> None:
    """Pick a headless OpenGL backend for MuJoCo and check that it opens a context.

    Raises:
      ValueError: no OpenGL context can be created (one line naming the backend).
    """
    prefer_headless_gl()
    backend = os.environ.get("MUJOCO_GL", "") or "glfw (default)"
    try:
        import mujoco

        renderer = mujoco.Renderer(mujoco.MjModel.from_xml_string("<mujoco/>"), 8, 8)
        renderer.close()
    except Exception as exc:  # MuJoCo raises several types for a missing GL library
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(
            f"--gif: Brax renders with MuJoCo, which cannot open an OpenGL context with "
            f"MUJOCO_GL={backend} ({why}); set MUJOCO_GL=egl (libEGL) or osmesa (libOSMesa) "
            "before jaxpg imports brax"
        ) from None


def check(env_id: str) -> None:
    """Raise ``ValueError`` (one line) if the suite env ``env_id`` cannot be drawn here.

    Imports the suite (an ``ImportError`` naming the extra if it is missing). For
    Brax, selects and checks MuJoCo's OpenGL backend (see the module doc); call it
    before Brax is imported so that ``MUJOCO_GL`` can still be chosen.

    Args:
      env_id: a suite id ``"suite/name"``.

    Raises:
      ValueError: the suite cannot render here, or Pillow (the GIF encoder) is missing.
    """
    suite, _ = split_id(env_id)
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise ValueError("--gif: writing a GIF needs Pillow (pip install pillow)") from None
    if suite == "brax":
        _brax_gl()
    try:
        load(suite)
    except ImportError as exc:
        raise ValueError(f"--gif {env_id}: {exc}") from None


def _navix_frames(env: Any, states: Sequence[Any]) -> list[np.ndarray]:
    from navix.observations import rgb

    draw = jax.jit(rgb)
    frames = []
    for state in states:
        img = np.asarray(draw(state.timestep.state), np.uint8)
        k = max(1, -(-_NAVIX_MIN_SIDE // min(img.shape[:2])))
        frames.append(np.repeat(np.repeat(img, k, axis=0), k, axis=1))
    return frames


def _craftax_frames(env: Any, states: Sequence[Any]) -> list[np.ndarray]:
    if env.name.startswith("craftax/Craftax-Classic"):
        from craftax.craftax_classic.constants import BLOCK_PIXEL_SIZE_IMG
        from craftax.craftax_classic.renderer import make_craftax_pixel_renderer
    else:
        from craftax.craftax.constants import BLOCK_PIXEL_SIZE_IMG
        from craftax.craftax.renderer import make_craftax_pixel_renderer
    with contextlib.redirect_stdout(sys.stderr):  # Craftax prints its texture loading
        draw = jax.jit(make_craftax_pixel_renderer(BLOCK_PIXEL_SIZE_IMG))
    return [np.asarray(np.clip(np.rint(draw(s)), 0, 255), np.uint8) for s in states]


def _jumanji_frames(env: Any, states: Sequence[Any]) -> list[np.ndarray]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    frames = []
    try:
        for state in states:
            with warnings.catch_warnings():  # "FigureCanvasAgg is non-interactive"
                warnings.simplefilter("ignore", UserWarning)
                out = env.env.render(state.inner)
            if out is None:  # a viewer in "human" mode draws into its (current) figure
                fig = plt.gcf()
                fig.canvas.draw()
                out = fig.canvas.buffer_rgba()
            img = Image.fromarray(np.asarray(out, np.uint8)[..., :3])
            img.thumbnail((_JUMANJI_MAX_SIDE, _JUMANJI_MAX_SIDE), Image.Resampling.LANCZOS)
            frames.append(np.asarray(img))
    finally:
        env.env.close()
    return frames


def _brax_frames(env: Any, states: Sequence[Any]) -> list[np.ndarray]:
    import mujoco
    from brax.io import image

    model = env.env.sys.mj_model
    cams = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
    camera = "track" if "track" in cams else None
    height, width = _BRAX_SIZE
    pipeline = [jax.device_get(s.inner.pipeline_state) for s in states]
    frames = image.render_array(env.env.sys, pipeline, height, width, camera)
    return [np.asarray(f, np.uint8) for f in frames]


_FRAMES = {
    "navix": (_navix_frames, 200),
    "craftax": (_craftax_frames, 100),
    "jumanji": (_jumanji_frames, 200),
    "brax": (_brax_frames, None),  # the env's time step
}


def frames(env_id: str, env: Any, states: Sequence[Any]) -> tuple[list[np.ndarray], int]:
    """Draw the adapter states of one episode with the suite's renderer.

    Args:
      env_id: the suite id ``"suite/name"`` that built ``env``.
      env: the adapter env (``jaxpg.suites.make(env_id)[0]``).
      states: the adapter's env states (unbatched), e.g. from
        ``jaxpg.render.episode_states``; the first :data:`MAX_FRAMES` are drawn.

    Returns:
      ``(frames, duration_ms)``: ``len(states)`` (at most :data:`MAX_FRAMES`) arrays
      ``uint8 [H, W, 3]`` of one shape, and the delay between frames in milliseconds.
    """
    suite, _ = split_id(env_id)
    draw, duration = _FRAMES[suite]
    if duration is None:
        duration = round(1000 * float(env.env.dt))
    return draw(env, list(states)[:MAX_FRAMES]), max(_MIN_DURATION_MS, int(duration))


def gif_bytes(frames: Sequence[np.ndarray], duration_ms: int) -> bytes:
    """Encode frames as a looping GIF.

    Args:
      frames: ``uint8 [H, W, 3]`` arrays of one shape (at least one).
      duration_ms: the delay between frames.

    Returns:
      The GIF file's bytes.
    """
    from PIL import Image

    if not frames:
        raise ValueError("frames is empty; allowed: at least one frame")
    images = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
    buf = io.BytesIO()
    images[0].save(
        buf,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=duration_ms,
        loop=0,
    )
    return buf.getvalue()
