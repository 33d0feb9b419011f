"""The CartPole gradient-variance experiment behind ``jaxpg variance``.

Protocol (``docs/variance.md``, "Protocol"; primary design, target T1 = ∇E[Σ_{t<500} r_t]):

1. Train PPO with jaxpg, stepping the compiled ``update`` in a Python loop, and
   freeze (policy, critic) at random init and when the smoothed training return
   first crosses each target (default 100, 250, 400: below the 500 cap, where
   ∇J ≈ 0, pitfall 9).
2. Per checkpoint c, draw a test pool of K complete episodes with key
   ``fold_in(key, 2c)`` and a *disjoint* reference pool of K_ref episodes with
   ``fold_in(key, 2c + 1)`` (pitfall 14); one key per trajectory.
3. g_ref = mean over the reference pool of E3-Vagent (G_t − V_φ(s_t) with the
   checkpoint's own critic), unbiased for T1.
4. Every estimator is computed on the same test pool (common random numbers):
   E1 ``reinforce``, E2 ``reward_to_go``, E3-Vagent ``baseline``, E3-Vstar
   (G_t − V*(s_t, t), V* fit on a third, fresh pool: ``jaxpg.variance.vstar``), GAE with γ = 1
   at several λ (λ = 1 is E3-Vagent), the PPO-style GAE(0.99, 0.95) (a T2
   estimator, reported against T1), and the same-batch baselines
   ``E3-mean``/``E3-loo``/``E3-refit`` and PPO's normalised estimator E5a at a
   few N.
5. Metrics (``jaxpg.variance.metrics``) for N = 1, 2, 4, … with M ≤ 32 disjoint
   batches per N; written to ``variance.csv``, ``summary.json`` and PNG plots.

Besides this estimator table (part ``estimators``), ``parts`` selects:
``decomposition`` (Tucker-style Σ_s / Σ_a / Σ_τ, :mod:`jaxpg.variance.decomposition`),
``law`` (R4 on a streamed pool, :mod:`jaxpg.variance.law`), ``ppo_step`` (E5b,
:mod:`jaxpg.variance.ppo_step`) and ``gae_map`` (the (γ, λ) map,
:mod:`jaxpg.variance.gae_map`). Pitfall numbers refer to ``docs/variance.md``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxpg import networks
from jaxpg.config import Config
from jaxpg.variance import batch_baselines, gradients, metrics, vstar
from jaxpg.variance.gradients import Estimator

E1, E2, E3, E3S = "E1_reinforce", "E2_reward_to_go", "E3_Vagent", "E3_Vstar"
PARTS = ("estimators", "decomposition", "law", "ppo_step", "gae_map")


def ppo_label(gamma: float, lam: float = 0.95) -> str:
    """Name of the PPO-style GAE(γ, λ) estimator in tables (``E4_gae_g0.99_l0.95``)."""
    return f"E4_gae_g{gamma:g}_l{lam:g}"


PPO_GAE = ppo_label(0.99)  # the default training γ


# The PPO run that makes the checkpoints the variances are measured at.
PPO_ENVS, PPO_STEPS = 32, 64


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Sizes and choices of one variance experiment (all static).

    Attributes:
      seed: master seed (training and pools).
      num_seeds: training seeds ``seed, seed + 1, …``; each gets its own PPO run,
        checkpoints and pools (between-seed spread).
      gamma: discount γ of the PPO training run, of its critic and of the
        PPO-style GAE(γ, 0.95) estimator (the T1 estimators use γ = 1).
      targets: training-return levels at which to freeze policies (after init).
      pool_size: K, test trajectories per checkpoint.
      ref_size: K_ref, reference trajectories per checkpoint (disjoint pool).
      batch_sizes: N values; default powers of two up to K/2.
      max_batches: M, disjoint batches per N (fewer when K/N is smaller).
      lambdas: GAE λ values (γ = 1) besides λ = 1 (which is E3-Vagent).
      batch_baseline_sizes: N values for the same-batch baselines.
      train_timesteps: PPO budget; training stops once the last target is hit.
      resamples: bootstrap resamples.
      chunk_size: trajectories per vmapped chunk (memory bound).
      num_dirs: random unit directions for the unbiasedness z-tests (R1).
      vstar_size: trajectories of the fresh pool that V*(s, t) is fit on.
      vstar_steps: Adam steps of that fit.
      parts: what to measure, a subset of :data:`PARTS`.
      decomp_states: visited pairs (one per fresh episode) of the decomposition.
      law_pool: trajectories of the streamed R4 pool (a multiple of law_chunk).
      law_batch_sizes: R4's N values (powers of two); default 4 … law_pool/32.
      law_max_batches: disjoint batch means kept per N.
      law_chunk: trajectories per streamed chunk.
      ppo_sizes: E5b rollout sizes (complete episodes per PPO update; even).
      ppo_seeds: independent rollouts per size.
      gae_gammas, gae_lambdas: the (γ, λ) grid.
      gae_pairs: state-action pairs per batch for the map's MSE.
    """

    seed: int = 0
    num_seeds: int = 1
    targets: tuple[float, ...] = (100.0, 250.0, 400.0)
    pool_size: int = 1024
    ref_size: int = 4096
    batch_sizes: tuple[int, ...] | None = None
    max_batches: int = 32
    lambdas: tuple[float, ...] = (0.0, 0.5, 0.9, 0.95, 0.99)
    batch_baseline_sizes: tuple[int, ...] = (2, 8, 32)
    train_timesteps: int = 400_000
    resamples: int = 200
    chunk_size: int = 256
    num_dirs: int = 32
    vstar_size: int = 1024
    vstar_steps: int = 1500
    gamma: float = 0.99
    parts: tuple[str, ...] = PARTS
    decomp_states: int = 4096
    law_pool: int = 8192
    law_batch_sizes: tuple[int, ...] | None = None
    law_max_batches: int = 512
    law_chunk: int = 1024
    ppo_sizes: tuple[int, ...] = (8, 32, 128)
    ppo_seeds: int = 8
    gae_gammas: tuple[float, ...] = (0.95, 0.99, 0.995, 1.0)
    gae_lambdas: tuple[float, ...] = (0.0, 0.5, 0.9, 0.95, 0.99, 1.0)
    gae_pairs: int = 2048

    def __post_init__(self) -> None:
        one_update = PPO_ENVS * PPO_STEPS
        if self.train_timesteps < one_update:
            raise ValueError(
                f"train_timesteps={self.train_timesteps} must be >= {one_update} (one PPO "
                f"update of {PPO_ENVS} envs x {PPO_STEPS} steps)"
            )
        if self.pool_size < 4 or self.ref_size < 4 or self.vstar_size < 4:
            raise ValueError("pool_size, ref_size and vstar_size must be >= 4")
        if list(self.targets) != sorted(set(self.targets)) or any(t <= 0 for t in self.targets):
            raise ValueError(f"targets must be increasing and > 0, got {self.targets}")
        if self.num_seeds < 1:
            raise ValueError(f"num_seeds must be >= 1, got {self.num_seeds}")
        if self.max_batches < 2 or self.resamples < 1 or self.chunk_size < 1:
            raise ValueError("max_batches must be >= 2, resamples and chunk_size >= 1")
        sizes = self.resolved_batch_sizes()
        if min(sizes) < 1:
            raise ValueError(f"batch sizes must be >= 1, got {sizes}")
        if max(sizes) > self.pool_size // 2:
            raise ValueError(
                f"batch size {max(sizes)} leaves fewer than 2 batches in a pool of "
                f"{self.pool_size}; allowed: N <= {self.pool_size // 2}"
            )
        if any(n < 2 or n > self.pool_size // 2 for n in self.batch_baseline_sizes):
            raise ValueError(f"batch_baseline_sizes must lie in [2, {self.pool_size // 2}]")
        if any(not 0.0 <= lam <= 1.0 for lam in self.lambdas + self.gae_lambdas):
            raise ValueError("lambdas and gae_lambdas must lie in [0, 1]")
        if not 0.0 < self.gamma <= 1.0 or any(not 0.0 < g <= 1.0 for g in self.gae_gammas):
            raise ValueError(f"gamma and gae_gammas must lie in (0, 1], got {self.gamma}")
        bad = [p for p in self.parts if p not in PARTS]
        if bad or not self.parts:
            raise ValueError(f"parts={bad or '()'} is unknown; allowed: {', '.join(PARTS)}")
        if self.decomp_states < 4 or self.ppo_seeds < 2 or self.gae_pairs < 1:
            raise ValueError("decomp_states must be >= 4, ppo_seeds >= 2, gae_pairs >= 1")
        if any(n < 2 or n % 2 for n in self.ppo_sizes):
            raise ValueError(f"ppo_sizes must be even and >= 2, got {self.ppo_sizes}")
        from jaxpg.variance import law

        chunk = min(self.law_chunk, self.law_pool)
        if chunk < 1 or chunk & (chunk - 1) or self.law_pool % chunk:
            raise ValueError(
                f"law_chunk={self.law_chunk} must be a power of two dividing law_pool="
                f"{self.law_pool}; allowed: law_pool a multiple of law_chunk"
            )
        law.batch_plan(self.law_pool, self.resolved_law_sizes(), self.law_max_batches)

    def resolved_batch_sizes(self) -> tuple[int, ...]:
        if self.batch_sizes:
            return tuple(sorted(set(int(n) for n in self.batch_sizes)))
        return tuple(2**i for i in range(int(math.log2(self.pool_size // 2)) + 1))

    def resolved_law_sizes(self) -> tuple[int, ...]:
        if self.law_batch_sizes:
            return tuple(sorted(set(int(n) for n in self.law_batch_sizes)))
        top = max(4, self.law_pool // 32)
        return tuple(2**i for i in range(2, int(math.log2(top)) + 1))


def estimator_set(lambdas, gamma: float = 0.99) -> list[Estimator]:
    """The pool estimators: E1, E2, E3-Vagent, GAE(1, λ), PPO-style GAE(γ, 0.95)."""
    out = [
        Estimator("reinforce", label=E1),
        Estimator("reward_to_go", label=E2),
        Estimator("baseline", label=E3),
    ]
    out += [Estimator("vpg", 1.0, float(lam), label=f"E4_gae_l{lam:g}") for lam in lambdas]
    out.append(Estimator("vpg", gamma, 0.95, label=ppo_label(gamma)))
    return out


# --- training and checkpoints -----------------------------------------------------


def policy_apply(agent) -> Callable:
    """``(policy_params, obs) -> logits`` of the trained agent's policy network.

    The built-in module's ``apply`` (equal for equal configs), so samplers that take
    it as a static argument compile once per config.
    """
    return networks.modules(agent.config, agent.spec)[0].apply


def value_apply(agent) -> Callable:
    """``(value_params, obs) -> V(obs)`` of the trained agent's critic."""
    return networks.modules(agent.config, agent.spec)[1].apply


def train_checkpoints(cfg: ExperimentConfig, log: Callable[[str], None] = print):
    """Train PPO and freeze params at init and at each target return.

    Returns:
      ``(agent, config, [{"name", "target", "train_return", "env_steps", "params",
      "opt_state"}])``; ``config`` is the training :class:`jaxpg.Config`.
    """
    from jaxpg.runspec import init_state, make_runspec
    from jaxpg.update import update

    config = Config(
        num_envs=PPO_ENVS,
        num_steps=PPO_STEPS,
        lr=1e-3,
        ent_coef=0.0,
        anneal_lr=False,
        total_timesteps=cfg.train_timesteps,
        seed=cfg.seed,
        gamma=cfg.gamma,
    )
    agent = make_runspec(config)
    step = jax.jit(lambda s, hp: update(agent, s, hp))
    state = init_state(agent, jax.random.key(cfg.seed))
    hp = config.hparams()
    ckpts = [
        {
            "name": "init",
            "target": None,
            "train_return": None,
            "env_steps": 0,
            "params": state.params,
            "opt_state": state.opt_state,
        }
    ]
    todo = list(cfg.targets)
    ema = None
    for _ in range(agent.num_updates):
        if not todo:
            break
        state, m = step(state, hp)
        ret = float(m["episode_return"])
        if math.isfinite(ret):
            ema = ret if ema is None else 0.7 * ema + 0.3 * ret
        if ema is not None and ema >= todo[0]:
            hit = [t for t in todo if ema >= t]
            todo = [t for t in todo if ema < t]
            ckpts.append(
                {
                    "name": f"R{int(hit[0])}",
                    "target": hit[0],
                    "train_return": ema,
                    "env_steps": int(m["env_steps"]),
                    "params": state.params,
                    "opt_state": state.opt_state,
                }
            )
            log(
                f"checkpoint R{int(hit[0])}: smoothed return {ema:.1f} "
                f"after {int(m['env_steps'])} steps"
            )
    for t in todo:
        log(f"target {t} not reached within {cfg.train_timesteps} steps")
    return agent, config, ckpts


# --- measurement --------------------------------------------------------------------


def _mre(pred, target, mask) -> float:
    """Mean relative error Σ mask·|V − G|/max(G, 1) / Σ mask of a critic's values."""
    err = jnp.abs(pred - target) / jnp.maximum(target, 1.0)
    return float(jnp.sum(err * mask) / jnp.sum(mask))


def _clean(x):
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


class Context(NamedTuple):
    """What every part measures against at one checkpoint."""

    pool: Any  # [T, K] test pool (complete episodes)
    lengths: np.ndarray  # [K] episode lengths of the test pool
    g_ref: jax.Array  # [d] the T1 reference gradient (mean of E3-Vagent, disjoint pool)
    ref_trace: float  # tr Σ₁ of the reference pool
    split_cos: float  # cosine between the two halves' means of the reference pool
    ref_proj: np.ndarray  # [K_ref, D] reference gradients projected on dirs
    dirs: np.ndarray  # [d, D] g_ref direction, then random unit directions
    v_star: tuple  # (apply, params) of V*(s, t), fit on a third, fresh pool
    vstar_mre: float  # V*'s mean relative error on the test pool
    agent_mre: float  # V_φ's mean relative error against γ-discounted returns


def context(
    cfg: ExperimentConfig, agent, ckpt: dict, index: int, key, rng: np.random.Generator
) -> Context:
    """Draw the test, reference and V* pools of one checkpoint and fit V*."""
    pol_apply, val_apply = policy_apply(agent), value_apply(agent)
    pp, vp = ckpt["params"]["policy"], ckpt["params"]["value"]
    limit = agent.spec.max_episode_steps
    sample = lambda k, n: gradients.trim_pool(  # noqa: E731
        gradients.sample_episodes(
            k, agent.env, agent.env_params, pol_apply, pp, n, chunk_size=cfg.chunk_size
        )
    )
    pool = sample(jax.random.fold_in(key, 2 * index), cfg.pool_size)
    ref_pool = sample(jax.random.fold_in(key, 2 * index + 1), cfg.ref_size)
    grad_kw = dict(value_apply=val_apply, value_params=vp, chunk_size=cfg.chunk_size)
    ref_g = gradients.pool_gradients(pol_apply, pp, ref_pool, [Estimator("baseline")], **grad_kw)[
        "baseline"
    ]
    ref = metrics.pool_stats(ref_g)
    g_ref = ref.mean
    half = cfg.ref_size // 2
    split_cos = float(
        metrics.cosine_matrix(jnp.stack([ref_g[:half].mean(0), ref_g[half:].mean(0)]))[0, 1]
    )
    dirs = rng.normal(size=(ref_g.shape[1], cfg.num_dirs))
    dirs /= np.linalg.norm(dirs, axis=0)
    dirs = np.concatenate([np.asarray(g_ref)[:, None] / float(jnp.linalg.norm(g_ref)), dirs], 1)
    ref_proj = np.asarray(ref_g @ jnp.asarray(dirs, ref_g.dtype), np.float64)
    ref_trace = float(ref.trace)
    del ref_g, ref_pool

    zeros = jnp.zeros_like(pool.reward)
    rtg = gradients.episode_weights(Estimator("reward_to_go"), pool, zeros, zeros)
    k_v = jax.random.fold_in(jax.random.fold_in(key, 7919), index)
    v_pool = sample(jax.random.fold_in(k_v, 0), cfg.vstar_size)
    v_zeros = jnp.zeros_like(v_pool.reward)
    v_apply, v_params = vstar.fit(
        jax.random.fold_in(k_v, 1),
        v_pool,
        gradients.episode_weights(Estimator("reward_to_go"), v_pool, v_zeros, v_zeros),
        limit,
        steps=cfg.vstar_steps,
    )
    vstar_mre = _mre(v_apply(v_params, pool.obs), rtg, pool.mask)
    # The agent's critic was trained on γ-discounted returns: score it against those.
    rtg_g = gradients.episode_weights(
        Estimator("reward_to_go", gamma=cfg.gamma), pool, zeros, zeros
    )
    agent_mre = _mre(val_apply(vp, pool.obs), rtg_g, pool.mask)
    return Context(
        pool,
        np.asarray(jnp.sum(pool.mask, axis=0)),
        g_ref,
        ref_trace,
        split_cos,
        ref_proj,
        dirs,
        (v_apply, v_params),
        vstar_mre,
        agent_mre,
    )


def measure_checkpoint(
    cfg: ExperimentConfig,
    agent,
    ckpt: dict,
    ctx: Context,
    rng: np.random.Generator,
) -> tuple[list[dict], dict]:
    """The estimator table of one checkpoint: (csv rows, {estimator: summary})."""
    pol_apply, val_apply = policy_apply(agent), value_apply(agent)
    pp, vp = ckpt["params"]["policy"], ckpt["params"]["value"]
    pool, g_ref, ref_trace = ctx.pool, ctx.g_ref, ctx.ref_trace
    mean_len = float(ctx.lengths.mean())
    layers = gradients.param_layers(pp)
    grad_kw = dict(value_apply=val_apply, value_params=vp, chunk_size=cfg.chunk_size)
    counts = rng.multinomial(
        cfg.pool_size, np.full(cfg.pool_size, 1.0 / cfg.pool_size), size=cfg.resamples
    )
    rows, summ, boot = [], {}, {}

    def record(name, g, sizes, extra):
        s = metrics.estimator_summary(g, g_ref, ref_trace, cfg.ref_size)
        s.update(extra)
        s["layer_var"] = metrics.layer_variances(metrics.pool_stats(g).var, layers)
        for n in sizes:
            b = metrics.batch_metrics(
                g, n, g_ref, max_batches=cfg.max_batches, rng=rng, resamples=cfg.resamples
            )
            b["N_tr_sigma_N"] = b["tr_sigma_N"] * n
            b["pairs"] = n * mean_len
            b["pred_pairwise"] = n / (n + s["B_ref"])
            b["pred_cos_ref"] = math.sqrt(n / (n + s["B_ref"]))
            rows.append(
                {
                    "checkpoint": ckpt["name"],
                    "level": ckpt["level"],
                    "seed": ckpt["seed"],
                    "estimator": name,
                    **b,
                }
            )
        summ[name] = s

    all_sizes = cfg.resolved_batch_sizes()
    pool_g = gradients.pool_gradients(
        pol_apply, pp, pool, estimator_set(cfg.lambdas, cfg.gamma), **grad_kw
    )
    zeros = jnp.zeros_like(pool.reward)
    grad_values = gradients.critic_values(val_apply, vp, pool)
    rtg = gradients.episode_weights(Estimator("reward_to_go"), pool, zeros, zeros)
    v_star = ctx.v_star[0](ctx.v_star[1], pool.obs)
    w_star = gradients.episode_weights(Estimator("baseline"), pool, v_star, zeros)
    pool_g[E3S] = gradients.gradients_from_weights(
        pol_apply, pp, pool, w_star, chunk_size=cfg.chunk_size
    )
    for name, g in pool_g.items():
        z = metrics.projection_z(g, ctx.ref_proj, ctx.dirs)
        boot[name] = metrics.bootstrap_traces(g, counts)
        record(
            name, g, all_sizes, {"z_ref_dir": float(z[0]), "z_max_abs": float(np.max(np.abs(z)))}
        )
    del pool_g

    ppo_adv = gradients.episode_weights(Estimator("vpg", cfg.gamma, 0.95), pool, *grad_values)
    for n in cfg.batch_baseline_sizes:
        sub = batch_baselines.truncate_pool(pool, n)
        w = batch_baselines.ppo_weights(ppo_adv, pool.mask, n)
        g = gradients.gradients_from_weights(pol_apply, pp, sub, w, chunk_size=cfg.chunk_size)
        record(f"E5a_ppo_N{n}", g, (n,), {"batch_N": n, "expected_scale": None})
        for kind in batch_baselines.BATCH_BASELINES:
            w = batch_baselines.batch_weights(kind, pool, rtg, n)
            g = gradients.gradients_from_weights(pol_apply, pp, sub, w, chunk_size=cfg.chunk_size)
            # The batch estimate is the mean of its N per-trajectory terms, so the
            # scale ratio of the mean over batches is the per-trajectory one.
            record(
                f"E3_{kind}_N{n}",
                g,
                (n,),
                {
                    "batch_N": n,
                    "expected_scale": (1.0 - 1.0 / n)
                    if kind == "mean"
                    else (1.0 if kind == "loo" else None),
                },
            )

    for name, s in summ.items():
        s["ratio_to_E1"] = s["tr_sigma1"] / summ[E1]["tr_sigma1"]
        if name in boot:
            r = boot[name] / boot[E1]
            s["ratio_to_E1_lo"], s["ratio_to_E1_hi"] = (
                float(q) for q in np.quantile(r, [0.025, 0.975])
            )
        hits = [r["N"] for r in rows if r["estimator"] == name and r["cos_ref"] >= 0.9]
        s["N_cos90"] = min(hits) if hits else None
        s["N_cos90_pred"] = 4.26 * s["B_ref"]
    for a, b in ((E1, E2), (E2, E3), (E3, E3S)):
        r = boot[a] / boot[b]
        summ[b][f"ratio_{a}_over_self_ci"] = [float(q) for q in np.quantile(r, [0.025, 0.975])]
    return rows, summ


# --- the other parts -------------------------------------------------------------------


def measure_decomposition(cfg: ExperimentConfig, agent, ckpt: dict, ctx: Context, key) -> dict:
    """Tucker-style Σ_s, Σ_a (none / V_φ / V*), Σ_τ of the T1 single-pair estimator."""
    from jaxpg.variance import decomposition

    pp, vp = ckpt["params"]["policy"], ckpt["params"]["value"]
    pairs = decomposition.sample_pairs(
        key,
        agent.env,
        agent.env_params,
        policy_apply(agent),
        pp,
        cfg.decomp_states,
        chunk_size=cfg.chunk_size,
    )
    v_apply, v_params = ctx.v_star
    baselines = {
        "none": jnp.zeros_like(pairs.q1x),
        "V_agent": value_apply(agent)(vp, pairs.obs),
        "V_star": v_apply(v_params, pairs.obs, pairs.time),
    }
    return decomposition.components(pairs, baselines)


def measure_law(cfg: ExperimentConfig, agent, ckpt: dict, ctx: Context, key, rng) -> dict:
    """R4 on a streamed pool of ``law_pool`` trajectories (E1 and E3-Vagent).

    E1 has the heaviest tails of the table's estimators and E3-Vagent is the
    reference estimator; both are batch-independent.
    """
    from jaxpg.variance import law

    pp, vp = ckpt["params"]["policy"], ckpt["params"]["value"]
    ests = [Estimator("reinforce", label=E1), Estimator("baseline", label=E3)]

    def grads_of(pool):
        return gradients.pool_gradients(
            policy_apply(agent),
            pp,
            pool,
            ests,
            value_apply=value_apply(agent),
            value_params=vp,
            chunk_size=cfg.chunk_size,
        )

    def sample(k, n):
        return gradients.trim_pool(
            gradients.sample_episodes(
                k,
                agent.env,
                agent.env_params,
                policy_apply(agent),
                pp,
                n,
                chunk_size=cfg.chunk_size,
            )
        )

    plan = law.batch_plan(cfg.law_pool, cfg.resolved_law_sizes(), cfg.law_max_batches)
    chunk = min(cfg.law_chunk, cfg.law_pool)
    acc = law.stream_pool(key, sample, grads_of, cfg.law_pool, chunk, plan)
    rows = law.law_rows(acc, rng=rng, resamples=cfg.resamples)
    return {"rows": rows, "verdict": law.verdict(rows), "pool": cfg.law_pool}


def measure_ppo_step(
    cfg: ExperimentConfig, agent, train_config: Config, ckpt: dict, ctx: Context, key
) -> list[dict]:
    """E5b: cosine of PPO's full update Δθ to g_ref per rollout size, over seeds."""
    from jaxpg.variance import ppo_step

    pp, vp = ckpt["params"]["policy"], ckpt["params"]["value"]
    own = Estimator("vpg", train_config.gamma, train_config.lam)
    g_own = gradients.pool_gradients(
        policy_apply(agent),
        pp,
        ctx.pool,
        [own],
        value_apply=value_apply(agent),
        value_params=vp,
        chunk_size=cfg.chunk_size,
    )["vpg"].mean(0)
    return ppo_step.measure(
        key,
        train_config,
        ckpt["params"],
        ckpt.get("opt_state"),
        ctx.g_ref,
        cfg.ppo_sizes,
        cfg.ppo_seeds,
        g_own=g_own,
    )


def measure_gae_map(cfg: ExperimentConfig, agent, ckpt: dict, ctx: Context) -> dict:
    """GAE(γ, λ) bias vs T1, tr Σ₁ and MSE over the configured grid."""
    from jaxpg.variance import gae_map

    return gae_map.measure(
        policy_apply(agent),
        ckpt["params"]["policy"],
        ctx.pool,
        ctx.g_ref,
        ctx.ref_trace,
        cfg.ref_size,
        cfg.gae_gammas,
        cfg.gae_lambdas,
        value_apply=value_apply(agent),
        value_params=ckpt["params"]["value"],
        pairs=cfg.gae_pairs,
        chunk_size=cfg.chunk_size,
    )


def criteria(checkpoints: list[dict], rows: list[dict]) -> dict:
    """Check R1, R2, R4, R5, R6, R7 (docs/variance.md, "Criteria") on the measured numbers.

    R4 is judged on the streamed pool of the ``law`` part when it ran; the
    estimator table's M ≤ 32 batches per N are reported as ``R4_small_pool``.
    """
    out = {}
    for c in checkpoints:
        if "estimators" not in c:
            if "law" in c:
                out[c["name"]] = {"R4": c["law"]["verdict"]}
            continue
        e = c["estimators"]
        unbiased = [E1, E2, E3, E3S]
        r1 = {k: e[k]["z_max_abs"] for k in unbiased if k in e and "z_max_abs" in e[k]}
        ci12 = e[E2].get(f"ratio_{E1}_over_self_ci", [math.nan, math.nan])
        ci23 = e[E3].get(f"ratio_{E2}_over_self_ci", [math.nan, math.nan])
        ci3s = e[E3S].get(f"ratio_{E3}_over_self_ci", [math.nan, math.nan])
        lam = sorted((float(k.split("_l")[1]), k) for k in e if k.startswith("E4_gae_l"))
        traces = [e[k]["tr_sigma1"] for _, k in lam] + [e[E3]["tr_sigma1"]]
        r6 = {}
        for k, s in e.items():
            if s.get("expected_scale") is not None:
                r6[k] = (s["scale_ratio"] - s["expected_scale"]) / s["scale_ratio_se"]
        out[c["name"]] = {
            "R1_max_abs_z": r1,
            "R1_pass": all(v < 4 for v in r1.values()) and c["ref_split_half_cos"] >= 0.99,
            "R2_trE1_over_trE2_ci": ci12,
            "R2_trE2_over_trE3_ci": ci23,
            "R2_trE3_over_trE3star_ci": ci3s,
            "R2_pass": ci12[0] > 1 and ci23[0] > 1 and ci3s[0] >= 1,
            "R5_trace_nondecreasing_in_lambda": bool(np.all(np.diff(traces) >= 0)),
            "R6_z": r6,
            "R6_pass": all(abs(v) < 3 for v in r6.values()),
        }
        law = {
            r["N"]: r["N_tr_sigma_N"] / e[E3]["tr_sigma1"]
            for r in rows
            if r["checkpoint"] == c["name"] and r["estimator"] == E3 and r["N"] >= 4 and r["M"] >= 8
        }
        out[c["name"]]["R4_small_pool_N_trSigmaN_over_trSigma1_E3"] = law
        out[c["name"]]["R4_small_pool_pass"] = all(abs(v - 1) <= 0.1 for v in law.values())
        if "law" in c:
            out[c["name"]]["R4"] = c["law"]["verdict"]
    by_seed: dict = {}
    for c in checkpoints:
        e = c.get("estimators", {})
        ppo = next((k for k in e if k.startswith("E4_gae_g")), None)
        if ppo is not None:
            by_seed.setdefault(c["seed"], []).append(e[ppo]["B"])
    out["R7_B_ppo_gae_by_checkpoint"] = by_seed
    out["R7_pass"] = bool(by_seed) and all(b[-1] > b[0] for b in by_seed.values())
    return out


def run(cfg: ExperimentConfig, log: Callable[[str], None] = print) -> tuple[list[dict], dict]:
    """Train, freeze, measure. Writes nothing (``jaxpg variance`` writes the files).

    Returns:
      ``(rows, summary)``: one row per (checkpoint, estimator, N) for
      ``variance.csv`` and the JSON-ready summary with the criteria checks.
    """
    t0 = time.time()
    rows, infos = [], []
    for seed in range(cfg.seed, cfg.seed + cfg.num_seeds):
        cfg_s = dataclasses.replace(cfg, seed=seed)
        agent, train_config, ckpts = train_checkpoints(cfg_s, log)
        key = jax.random.fold_in(jax.random.key(seed), 12345)
        for i, ck in enumerate(ckpts):
            level = ck["name"]
            name = level if cfg.num_seeds == 1 else f"{level}@s{seed}"
            ck = ck | {"name": name, "level": level, "seed": seed}
            info = measure_all(cfg_s, agent, train_config, ck, i, key, log)
            rows += info.pop("rows")
            infos.append(info)
    summary = _clean(
        {
            "config": dataclasses.asdict(cfg)
            | {
                "batch_sizes": cfg.resolved_batch_sizes(),
                "law_batch_sizes": cfg.resolved_law_sizes(),
            },
            "target": "T1: gradient of E[sum_{t<500} r_t], gamma = 1, complete episodes",
            "checkpoints": infos,
            "criteria": criteria(infos, rows),
            "seconds": time.time() - t0,
            "device": str(jax.devices()[0]),
        }
    )
    return [_clean(r) for r in rows], summary


def measure_all(
    cfg: ExperimentConfig,
    agent,
    train_config: Config,
    ckpt: dict,
    index: int,
    key,
    log: Callable[[str], None] = print,
) -> dict:
    """Every selected part at one checkpoint; the summary entry (with ``rows``)."""
    t0 = time.time()
    rng = np.random.default_rng([cfg.seed, index])
    ctx = context(cfg, agent, ckpt, index, key, rng)
    lengths = ctx.lengths
    info = {
        "name": ckpt["name"],
        "level": ckpt["level"],
        "seed": ckpt["seed"],
        "target": ckpt["target"],
        "train_return": ckpt["train_return"],
        "train_env_steps": ckpt["env_steps"],
        "mean_length": float(lengths.mean()),
        "std_length": float(lengths.std()),
        "frac_at_cap": float(np.mean(lengths >= agent.spec.max_episode_steps)),
        "pool_size": cfg.pool_size,
        "ref_size": cfg.ref_size,
        "pool_steps": int(lengths.sum()),
        "num_params": int(ctx.g_ref.shape[0]),
        "ref_estimator": E3,
        "ref_split_half_cos": ctx.split_cos,
        "ref_norm_sq": float(jnp.sum(ctx.g_ref**2)),
        "ref_tr_sigma1": ctx.ref_trace,
        "vstar_size": cfg.vstar_size,
        "vstar_mre": ctx.vstar_mre,
        f"agent_critic_mre_g{cfg.gamma:g}": ctx.agent_mre,
        "rows": [],
        "part_seconds": {},
    }
    part_key = lambda j: jax.random.fold_in(jax.random.fold_in(key, 31337 + j), index)  # noqa: E731
    for part in cfg.parts:
        tp = time.time()
        if part == "estimators":
            info["rows"], info["estimators"] = measure_checkpoint(cfg, agent, ckpt, ctx, rng)
        elif part == "decomposition":
            info["decomposition"] = measure_decomposition(cfg, agent, ckpt, ctx, part_key(1))
        elif part == "law":
            info["law"] = measure_law(cfg, agent, ckpt, ctx, part_key(2), rng)
        elif part == "ppo_step":
            info["ppo_step"] = measure_ppo_step(cfg, agent, train_config, ckpt, ctx, part_key(3))
        elif part == "gae_map":
            info["gae_map"] = measure_gae_map(cfg, agent, ckpt, ctx)
        info["part_seconds"][part] = time.time() - tp
    info["seconds"] = time.time() - t0
    log(
        f"{ckpt['name']}: mean length {info['mean_length']:.1f}, ref split-half cos "
        f"{ctx.split_cos:.3f}, {info['seconds']:.0f}s ("
        + ", ".join(f"{k} {v:.0f}s" for k, v in info["part_seconds"].items())
        + ")"
    )
    return info
