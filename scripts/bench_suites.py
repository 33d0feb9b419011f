"""Throughput per environment suite: the suite's own steps/s beside jaxpg's training steps/s.

For each env id, with the same batch (``--num-envs`` × ``--num-steps``):

* ``step_env``: the adapter's ``step_env`` (the suite's simulation, no reset), random
  actions, ``vmap`` over envs × ``lax.scan`` over time;
* ``env.step``: gymnax's ``step`` on the adapter (adds the auto-reset that jaxpg uses:
  ``reset_env`` runs on every step and is kept where an episode ended);
* ``train``: ``jaxpg.make_train`` PPO (``Config`` defaults otherwise), env steps per
  second of the whole run (rollout, GAE, epochs of minibatch updates).

Each program is compiled first (compile time reported), then timed over ``--repeats``
runs; the best and the median steps/s are reported (on a shared machine the best is
the closer estimate of the uncontended speed). Suites that are not installed are skipped.

  python scripts/bench_suites.py                       # one task per suite
  python scripts/bench_suites.py --env navix/Navix-DoorKey-5x5-v0 --num-envs 64 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp

import jaxpg
from jaxpg import envs, suites

DEFAULT_ENVS = (
    "navix/Navix-DoorKey-5x5-v0",
    "jumanji/Snake-v1",
    "brax/inverted_pendulum",
    "craftax/Craftax-Classic-Symbolic-v1",
)


def _random_actions(key, space, shape):
    if hasattr(space, "n"):
        return jax.random.randint(key, shape, 0, space.n)
    return jax.random.uniform(key, shape + tuple(space.shape), minval=-1.0, maxval=1.0)


def make_env_loop(env, params, num_envs: int, num_steps: int, with_reset: bool):
    """A jitted ``run(key)`` stepping ``num_envs`` envs ``num_steps`` times, random actions."""
    space = env.action_space(params)

    def one(key, state, action):
        if with_reset:
            return env.step(key, state, action, params)[1]
        return env.step_env(key, state, action, params)[1]

    def body(state, key):
        k_act, k_env = jax.random.split(key)
        actions = _random_actions(k_act, space, (num_envs,))
        keys = jax.random.split(k_env, num_envs)
        return jax.vmap(one)(keys, state, actions), None

    @jax.jit
    def run(key):
        k_reset, k_run = jax.random.split(key)
        _, state = jax.vmap(env.reset_env, in_axes=(0, None))(
            jax.random.split(k_reset, num_envs), params
        )
        state, _ = jax.lax.scan(body, state, jax.random.split(k_run, num_steps))
        return state

    return run


def _time(fn, key, repeats: int) -> tuple[float, float, float]:
    """``(compile + first run s, best s, median s)``."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(key))
    compile_s = time.perf_counter() - t0
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(jax.random.fold_in(key, i + 1)))
        times.append(time.perf_counter() - t0)
    return compile_s, min(times), statistics.median(times)


def bench(env_id: str, num_envs: int, num_steps: int, updates: int, repeats: int) -> dict:
    env, params = envs.make_env(env_id)
    key = jax.random.key(0)
    steps = num_envs * num_steps
    row = {"env": env_id, "num_envs": num_envs, "num_steps": num_steps}
    for label, with_reset in (("step_env", False), ("env.step", True)):
        c, best, med = _time(
            make_env_loop(env, params, num_envs, num_steps, with_reset), key, repeats
        )
        row[f"{label}_sps"], row[f"{label}_sps_median"] = steps / best, steps / med
        row[f"{label}_compile_s"] = c
    cfg = jaxpg.Config(
        env=env_id,
        num_envs=num_envs,
        num_steps=num_steps,
        total_timesteps=steps * updates,
        num_minibatches=4,
    )
    train = jax.jit(jaxpg.make_train(cfg))
    c, best, med = _time(train, key, repeats)
    row["train_sps"], row["train_sps_median"] = steps * updates / best, steps * updates / med
    row["train_compile_s"] = c
    return row


def run(env_ids, num_envs: int, num_steps: int, updates: int, repeats: int) -> list[dict]:
    """Benchmark each installed suite's env id (uninstalled suites are skipped, said so)."""
    rows = []
    for env_id in env_ids:
        suite, _ = suites.split_id(env_id)
        try:
            suites.load(suite)
        except ImportError as err:
            print(f"{env_id}: skipped ({err})")
            continue
        row = bench(env_id, num_envs, num_steps, updates, repeats)
        rows.append(row)
        cols = "  ".join(
            f"{k} {row[k + '_sps']:>9.0f}/s (median {row[k + '_sps_median']:.0f})"
            for k in ("step_env", "env.step", "train")
        )
        print(f"{env_id:36s} {cols}  compile+first {row['train_compile_s']:.0f} s", flush=True)
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--env", action="append", help="suite/name ids (repeatable)")
    ap.add_argument("--num-envs", type=int, default=16)
    ap.add_argument("--num-steps", type=int, default=64)
    ap.add_argument("--updates", type=int, default=4, help="PPO updates per timed train run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="write the rows to this file")
    args = ap.parse_args(argv)
    rows = run(args.env or DEFAULT_ENVS, args.num_envs, args.num_steps, args.updates, args.repeats)
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, {jax.device_count()} device(s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "jax": jax.__version__}, f, indent=1)


if __name__ == "__main__":
    jnp.zeros(())  # initialise the backend before timing
    main()
