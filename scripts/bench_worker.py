"""A benchmark worker: compiles one PPO training program, then times runs on request.

Run by ``scripts/benchmark.py`` as a subprocess (so the peer can live in its own
virtual environment). Protocol: one JSON object per line on stdin, one reply per
line on stdout.

  {"cmd": "prepare", "system": "jaxpg" | "rejax", "settings": {...}}
      -> {"compile_s": float, "steps": int, "versions": {...}}
  {"cmd": "run", "seed": int}    -> {"run_s": float}
  {"cmd": "eval", "episodes": n} -> {"return": [float]}  (each run's final policy)
  {"cmd": "quit"}
"""

from __future__ import annotations

import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")


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
        train = jaxpg.make_train(self.cfg)
        t0 = time.perf_counter()
        self.compiled = jax.jit(train).lower(jax.random.key(0)).compile()
        self.compile_s = time.perf_counter() - t0
        agent_steps = train.num_updates * self.cfg.num_envs
        self.steps = agent_steps * (
            self.cfg.num_steps if self.cfg.rollout_mode == "segments" else 500
        )
        self._eval = jax.jit(make_evaluate(self.cfg, num_episodes=128))
        self.versions = _versions("jax", "jaxlib", "gymnax", "flax", "optax", "jaxpg")
        self.policies = []

    def run(self, seed):
        import jax

        key = jax.random.key(seed)
        t = time.perf_counter()
        out = jax.block_until_ready(self.compiled(key))
        dt = time.perf_counter() - t
        self.policies.append(out.state.params)
        return dt

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
        self.steps = (s["total_timesteps"] // batch) * batch
        algo = rejax.PPO.create(
            env=env,
            env_params=env_params,
            num_envs=s["num_envs"],
            num_steps=s["num_steps"],
            total_timesteps=self.steps,
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
            eval_freq=self.steps,
            skip_initial_evaluation=True,
            agent_kwargs={"activation": "tanh", "hidden_layer_sizes": (64, 64)},
        )
        self._real_eval = algo.eval_callback
        self.algo = algo.replace(eval_callback=lambda a, ts, rng: jnp.zeros((), jnp.float32))
        t0 = time.perf_counter()
        self.compiled = jax.jit(self.algo.train).lower(jax.random.PRNGKey(0)).compile()
        self.compile_s = time.perf_counter() - t0
        self.versions = _versions("jax", "jaxlib", "gymnax", "flax", "optax", "rejax")
        self.states = []

    def run(self, seed):
        import jax

        t = time.perf_counter()
        ts, _ = jax.block_until_ready(self.compiled(jax.random.PRNGKey(seed)))
        dt = time.perf_counter() - t
        self.states.append(ts)
        return dt

    def evaluate(self, episodes):
        import jax

        return [
            float(self._real_eval(self.algo, ts, jax.random.PRNGKey(10_000))[1].mean())
            for ts in self.states
        ]


def main() -> None:
    system = None
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg["cmd"]
        if cmd == "prepare":
            cls = JaxpgSystem if msg["system"] == "jaxpg" else RejaxSystem
            system = cls(msg["settings"])
            reply = {
                "compile_s": system.compile_s,
                "steps": system.steps,
                "versions": system.versions,
            }
        elif cmd == "run":
            reply = {"run_s": system.run(msg["seed"])}
        elif cmd == "eval":
            reply = {"return": system.evaluate(msg.get("episodes", 128))}
        elif cmd == "quit":
            return
        else:
            reply = {"error": f"unknown cmd {cmd!r}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
