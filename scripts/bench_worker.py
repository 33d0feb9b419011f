"""A benchmark worker: compiles one PPO training program, then times runs on request.

Run by ``scripts/benchmark.py`` as a subprocess (so the peer can live in its own
virtual environment). Protocol: one JSON object per line on stdin, one reply per
line on stdout.

  {"cmd": "prepare", "system": "jaxpg" | "rejax", "settings": {...}}
      -> {"trace_s", "compile_s", "trace_cpu_s", "compile_cpu_s": float,
          "steps": int, "versions": {...}}
  {"cmd": "recompile"}           -> {"compile_s", "compile_cpu_s"} (the same program again)
  {"cmd": "run", "seed": int}    -> {"run_s": float, "run_cpu_s": float}
  {"cmd": "eval", "episodes": n} -> {"return": [float]}  (each run's final policy)
  {"cmd": "memory"}              -> {"peak_bytes_in_use": int | None, "compiled_bytes": ...}
      (the device allocator's peak so far, where the backend reports one; the
      compiled program's arguments + outputs + temporaries)
  {"cmd": "quit"}

``settings["seeds"] > 1`` compiles ``jax.vmap`` of the whole run over that many
keys (one program); ``steps`` then counts every seed's steps. ``trace_s`` is
tracing and lowering to StableHLO (``jit(f).lower``), ``compile_s`` XLA's
compilation of it (``.compile()``), timed apart. ``*_cpu_s`` are the same spans
in CPU seconds of this process (all threads): on a shared machine they count
the work done, however long the wait for a core.
"""

from __future__ import annotations

import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")


class Timed:
    """Wall-clock and process CPU seconds of a block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def _lower_and_compile(system, fn, key):
    """Set ``system.compiled`` and its trace/compile times (wall and CPU) at ``key``."""
    import jax

    with Timed() as trace:
        lowered = jax.jit(fn).lower(key)
    with Timed() as comp:
        system.compiled = lowered.compile()
    system.trace_s, system.trace_cpu_s = trace.wall, trace.cpu
    system.compile_s, system.compile_cpu_s = comp.wall, comp.cpu
    system.recompile = lambda: _compile_again(fn, key)


def _compile_again(fn, key) -> dict:
    """XLA's compilation of the same program once more (JAX's in-memory caches cleared)."""
    import jax

    jax.clear_caches()  # else the second compile is a cache hit
    lowered = jax.jit(fn).lower(key)
    with Timed() as comp:
        lowered.compile()
    return {"compile_s": comp.wall, "compile_cpu_s": comp.cpu}


def _seed_keys(seed, seeds, make_key):
    import jax

    key = make_key(seed)
    return jax.random.split(key, seeds) if seeds > 1 else key


def _unstack(tree, seeds):
    import jax

    if seeds == 1:
        return [tree]
    return [jax.tree.map(lambda x, i=i: x[i], tree) for i in range(seeds)]


def _before_runspec() -> bool:
    """Source trees before the RunSpec refactor evaluate the policy's own params."""
    import jaxpg.update

    return hasattr(jaxpg.update, "make_agent")


def _versions(*names):
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = None
    return out


class JaxpgSystem:
    def __init__(self, s):
        import jax

        import jaxpg
        from jaxpg.evaluate import make_evaluate

        self.cfg = jaxpg.Config(
            estimator=s.get("estimator", "ppo"),
            num_envs=s["num_envs"],
            num_steps=s["num_steps"],
            total_timesteps=s["total_timesteps"],
            num_epochs=s["num_epochs"],
            num_minibatches=s["num_minibatches"],
            lr=s["lr"],
            ent_coef=s["ent_coef"],
            gamma=0.99,
            lam=0.95,
            clip_eps=0.2,
            vf_coef=0.5,
            max_grad_norm=0.5,
            hidden_sizes=(64, 64),
            activation="tanh",
            anneal_lr=s.get("anneal_lr", True),
            weight_init=s.get("weight_init", "orthogonal"),
        )
        self.seeds = s.get("seeds", 1)
        train = jaxpg.make_train(self.cfg)
        fn = jax.vmap(train) if self.seeds > 1 else train
        # The README's own usage, ``jax.jit(jaxpg.make_train(config))``: no private path.
        _lower_and_compile(self, fn, _seed_keys(0, self.seeds, jax.random.key))
        agent_steps = train.num_updates * self.cfg.num_envs * self.seeds
        self.steps = agent_steps * (
            self.cfg.num_steps if self.cfg.rollout_mode == "segments" else 500
        )
        self._eval = jax.jit(make_evaluate(self.cfg, num_episodes=128))
        self._policy_only = _before_runspec()
        self.versions = _versions("jax", "jaxlib", "gymnax", "flax", "optax", "jaxpg")
        self.policies = []

    def run(self, seed):
        import jax

        key = jax.block_until_ready(_seed_keys(seed, self.seeds, jax.random.key))
        with Timed() as t:
            out = jax.block_until_ready(self.compiled(key))
        params = out.state.params["policy"] if self._policy_only else out.state.params
        self.policies.extend(_unstack(params, self.seeds))
        return t

    def evaluate(self, episodes):
        import jax

        return [float(self._eval(jax.random.key(10_000), p).returns.mean()) for p in self.policies]


class _FiveTuple:
    """gymnax >= 1.0 returns 6 values from step; rejax 0.1.x unpacks 5."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        if name.startswith("__") or name == "_env":
            raise AttributeError(name)
        return getattr(self._env, name)

    def reset(self, key, params=None):
        return self._env.reset(key, params)

    def step(self, key, state, action, params=None):
        import jax.numpy as jnp

        obs, state, reward, term, trunc, info = self._env.step(key, state, action, params)
        return obs, state, reward, jnp.logical_or(term, trunc), info


class RejaxSystem:
    def __init__(self, s):
        import gymnax
        import jax
        import jax.numpy as jnp
        import rejax

        env, env_params = gymnax.make("CartPole-v1")
        _, st = env.reset(jax.random.PRNGKey(0), env_params)
        if len(env.step(jax.random.PRNGKey(0), st, 0, env_params)) == 6:
            env = _FiveTuple(env)
        batch = s["num_envs"] * s["num_steps"]
        self.seeds = s.get("seeds", 1)
        per_seed = (s["total_timesteps"] // batch) * batch
        self.steps = per_seed * self.seeds
        algo = rejax.PPO.create(
            env=env,
            env_params=env_params,
            num_envs=s["num_envs"],
            num_steps=s["num_steps"],
            total_timesteps=per_seed,
            num_epochs=s["num_epochs"],
            num_minibatches=s["num_minibatches"],
            learning_rate=s["lr"],
            gamma=0.99,
            gae_lambda=0.95,
            clip_eps=0.2,
            ent_coef=s["ent_coef"],
            vf_coef=0.5,
            max_grad_norm=0.5,
            normalize_observations=False,
            normalize_rewards=False,
            eval_freq=per_seed,
            skip_initial_evaluation=True,
            agent_kwargs={"activation": "tanh", "hidden_layer_sizes": (64, 64)},
        )
        self._real_eval = algo.eval_callback
        self.algo = algo.replace(eval_callback=lambda a, ts, rng: jnp.zeros((), jnp.float32))
        fn = jax.vmap(self.algo.train) if self.seeds > 1 else self.algo.train
        _lower_and_compile(self, fn, _seed_keys(0, self.seeds, jax.random.PRNGKey))
        self.versions = _versions("jax", "jaxlib", "gymnax", "flax", "optax", "rejax")
        self.states = []

    def run(self, seed):
        import jax

        key = jax.block_until_ready(_seed_keys(seed, self.seeds, jax.random.PRNGKey))
        with Timed() as t:
            ts, _ = jax.block_until_ready(self.compiled(key))
        self.states.extend(_unstack(ts, self.seeds))
        return t

    def evaluate(self, episodes):
        import jax

        # One compiled evaluation for every run's state (rejax's callback is not jitted).
        evaluate = jax.jit(lambda ts, key: self._real_eval(self.algo, ts, key)[1].mean())
        return [float(evaluate(ts, jax.random.PRNGKey(10_000))) for ts in self.states]


def _memory(system) -> dict:
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    m = system.compiled.memory_analysis() if system is not None else None
    size = None
    if m is not None:
        size = int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)
    return {"peak_bytes_in_use": stats.get("peak_bytes_in_use"), "compiled_bytes": size}


def main() -> None:
    system = None
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg["cmd"]
        if cmd == "prepare":
            cls = JaxpgSystem if msg["system"] == "jaxpg" else RejaxSystem
            system = cls(msg["settings"])
            reply = {
                "trace_s": system.trace_s,
                "compile_s": system.compile_s,
                "trace_cpu_s": system.trace_cpu_s,
                "compile_cpu_s": system.compile_cpu_s,
                "steps": system.steps,
                "versions": system.versions,
            }
        elif cmd == "recompile":
            reply = system.recompile()
        elif cmd == "run":
            t = system.run(msg["seed"])
            reply = {"run_s": t.wall, "run_cpu_s": t.cpu}
        elif cmd == "memory":
            reply = _memory(system)
        elif cmd == "eval":
            reply = {"return": system.evaluate(msg.get("episodes", 128))}
        elif cmd == "quit":
            return
        else:
            reply = {"error": f"unknown cmd {cmd!r}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
