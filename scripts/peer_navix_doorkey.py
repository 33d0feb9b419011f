"""rejax's own PPO on Navix DoorKey-8x8 with navix's published baseline config.

navix's repository reports rejax PPO at 0.77 ± 0.08 after 131k steps on
``Navix-DoorKey-8x8-v0`` (``baselines/rejax/configs/navix_doorkey_8x8_1m.yaml``).
This script runs that config with the released packages, to tell a jaxpg problem
from a reference that does not reproduce (docs/suites.md, "Suite presets").

Run it with the Python of a venv holding rejax 0.1.3 and navix 0.7.4 (for example the
peer venv of ``scripts/benchmark.py`` plus ``pip install --no-deps navix==0.7.4``).
navix 0.7.4 imports ``rlax`` and ``wandb`` at package import for its own agents,
which this script never uses; it puts empty stand-ins for those two in
``sys.modules`` so they need not be installed (rlax's tensorflow-probability
does not import under jax 0.10)::

    /path/to/rejax-venv/bin/python scripts/peer_navix_doorkey.py --steps 131072 --seeds 5

Measured 2026-11-30, 2-core CPU: final evaluation per seed 0.03, 0, 0, 0, 0.
"""

from __future__ import annotations

import argparse
import sys
import time
import types

CONFIG = dict(  # navix's baselines/rejax/configs/navix_doorkey_8x8_1m.yaml, "ppo"
    env="navix/Navix-DoorKey-8x8-v0",
    agent_kwargs={"activation": "tanh"},
    num_envs=16,
    num_steps=128,
    num_epochs=2,
    num_minibatches=1,
    learning_rate=3e-4,
    max_grad_norm=1,
    gamma=0.95,
    gae_lambda=0.9,
    clip_eps=0.2,
    ent_coef=0.01,
    vf_coef=0.5,
    normalize_observations=False,
)


class _Absent(types.ModuleType):
    """A module whose every public attribute is an empty class (import-time use only)."""

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=131_072)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    for name in ("rlax", "wandb", "wandb.util"):
        sys.modules.setdefault(name, _Absent(name))
    import jax
    import numpy as np
    from rejax import PPO

    algo = PPO.create(**CONFIG, total_timesteps=args.steps, eval_freq=args.steps)
    start = time.perf_counter()
    _, (_, returns) = jax.jit(jax.vmap(algo.train))(jax.random.split(jax.random.key(0), args.seeds))
    final = np.asarray(returns)[:, -1].mean(-1)  # [seeds]: mean over rejax's eval episodes
    se = final.std(ddof=1) / np.sqrt(len(final)) if len(final) > 1 else float("nan")
    print(f"rejax PPO, {args.steps} steps, final eval per seed: {np.round(final, 3).tolist()}")
    print(f"mean {final.mean():.3f} ± {se:.3f} (SE), {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
