"""Named, documented configurations with the result each is documented to reach.

Every preset's ``result`` is reproduced by a script under ``scripts/`` (see the
README's presets table); the learning tests check the CartPole ones.
"""

from __future__ import annotations

import dataclasses

from jaxpg.config import Config


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    config: Config
    description: str
    result: str  # the documented outcome, e.g. "eval return 500.0 ± 0.0 over 8 seeds"
    target: float  # return a learning test asserts (mean over seeds)


def _p(name, description, result, target, **fields) -> tuple[str, Preset]:
    return name, Preset(name, Config(**fields), description, result, target)


# --- CartPole-v1: one preset per estimator -----------------------------------
_INF = float("inf")  # no gradient clipping for the vanilla estimators
CARTPOLE = dict(
    [
        _p(
            "cartpole-ppo",
            "PPO with GAE on CartPole-v1: exactly the Config() defaults.",
            "eval return 500.0 ± 0.0 over 8 seeds, 1M steps",
            475.0,
        ),
        _p(
            "cartpole-reinforce",
            "REINFORCE with the whole (undiscounted) episode return, 64 complete "
            "episodes per update, one Adam step per batch.",
            "eval return 497.9 (min 491.7) over 4 seeds, 6M steps",
            450.0,
            estimator="reinforce",
            num_envs=64,
            lr=3e-3,
            gamma=1.0,
            ent_coef=0.0,
            max_grad_norm=_INF,
            total_timesteps=6_000_000,
        ),
        _p(
            "cartpole-reward-to-go",
            "Reward-to-go (γ = 0.99), 32 complete episodes per update.",
            "eval return 500.0 over 4 seeds, 5M steps",
            450.0,
            estimator="reward_to_go",
            num_envs=32,
            lr=3e-3,
            gamma=0.99,
            ent_coef=0.0,
            max_grad_norm=_INF,
            total_timesteps=5_000_000,
        ),
        _p(
            "cartpole-baseline",
            "Reward-to-go minus a learned V(s) (fit by regression to G_t), 32 envs × 64-step "
            "segments bootstrapped at cuts, one step per segment batch.",
            "eval return 498.7 (min 494.6) over 4 seeds, 2M steps",
            450.0,
            estimator="baseline",
            num_envs=32,
            num_steps=64,
            lr=3e-3,
            ent_coef=0.0,
            max_grad_norm=_INF,
            total_timesteps=2_000_000,
        ),
        _p(
            "cartpole-vpg",
            "Vanilla policy gradient with GAE(0.99, 0.95) advantages, 32 envs × 64 steps, "
            "one step per batch.",
            "eval return 500.0 on 31 of 32 seeds (433 on the other), 2M steps",
            450.0,
            estimator="vpg",
            num_envs=32,
            num_steps=64,
            lr=1e-2,
            ent_coef=0.0,
            max_grad_norm=0.5,
            total_timesteps=2_000_000,
        ),
    ]
)


# --- other environments ------------------------------------------------------
# Results: scripts/reproduce_presets.py (5 seeds, 32 sampled eval episodes per
# seed; mean ± std over seeds of the per-seed mean), wall time on the shared
# 2-core dev CPU with compile. Raw numbers: docs/presets_other.json.
# breakout-minatar-ppo's settings; breakout-minatar-cnn adds one convolution in front.
_BREAKOUT = dict(
    env="Breakout-MinAtar",
    estimator="ppo",
    num_envs=64,
    num_steps=128,
    total_timesteps=500_000,
    lr=5e-3,
    num_minibatches=8,
    hidden_sizes=(256, 256),
    activation="relu",
)
OTHER = dict(
    [
        _p(
            "acrobot-ppo",
            "PPO with GAE on Acrobot-v1 (swing up; -500 means never).",
            "eval return -81.7 ± 3.4 over 5 seeds (500k env steps, 43 s for all seeds)",
            -100.0,
            env="Acrobot-v1",
            estimator="ppo",
            num_envs=8,
            num_steps=128,
            total_timesteps=500_000,
            lr=1e-3,
        ),
        _p(
            "acrobot-vpg",
            "Vanilla policy gradient, GAE(0.97), normalised advantages, Acrobot-v1.",
            "eval return -92.3 ± 7.9 over 5 seeds (500k env steps, 44 s for all seeds)",
            -120.0,
            env="Acrobot-v1",
            estimator="vpg",
            num_envs=16,
            num_steps=128,
            total_timesteps=500_000,
            lr=3e-3,
            lam=0.97,
            anneal_lr=False,
            normalize_advantages=True,
        ),
        _p(
            "pendulum-ppo",
            "PPO with a Gaussian policy on Pendulum-v1 (continuous torque).",
            "eval return -148.7 ± 12.3 over 5 seeds (1M env steps, 96 s for all seeds)",
            -250.0,
            env="Pendulum-v1",
            estimator="ppo",
            num_envs=16,
            num_steps=128,
            total_timesteps=1_000_000,
            lr=1e-3,
            gamma=0.95,
            lam=0.95,
            num_epochs=10,
            num_minibatches=32,
            ent_coef=0.0,
            max_grad_norm=0.5,
            log_std_init=-0.5,
        ),
        _p(
            "memorychain-gru",
            "PPO with a GRU policy on MemoryChain-bsuite: the context bit is shown at "
            "the start and must be repeated 5 steps later, when nothing observed "
            "depends on it (a feed-forward policy scores 0 in expectation).",
            "eval return 1.0 ± 0.0 over 5 seeds (100k env steps, 53 s for all seeds); "
            "with network=mlp -0.1 ± 0.2",
            0.9,
            env="MemoryChain-bsuite",
            network="gru",
            hidden_sizes=(32,),
            num_envs=32,
            num_steps=16,
            num_minibatches=4,
            lr=3e-3,
            ent_coef=0.01,
            total_timesteps=100_000,
        ),
        _p(
            "breakout-minatar-ppo",
            "PPO with an MLP on Breakout-MinAtar (10x10x4 grid flattened).",
            "eval return 26.1 ± 3.0 over 5 seeds (500k env steps, 233 s for all seeds)",
            15.0,
            **_BREAKOUT,
        ),
        _p(
            "breakout-minatar-cnn",
            "PPO with a CNN on Breakout-MinAtar: one 3×3 convolution (16 channels) over the "
            "10x10x4 grid, then breakout-minatar-ppo's dense layers and settings.",
            "eval return 28.9 ± 6.4 (std) over 5 seeds (median 24.6, IQM 27.3; the MLP: "
            "26.1 ± 3.0, median 23.9, IQM 25.6), 500k env steps, 4,882 s on a shared CPU: "
            "a higher mean than the MLP's, inside the seed noise",
            15.0,
            network="cnn",
            conv_channels=(16,),
            **_BREAKOUT,
        ),
    ]
)


# --- the ladder's destination: trust regions and group baselines ----------------
# Results: scripts/reproduce_presets.py NAMES --seeds 4 (one vmapped program per
# preset; 32 sampled eval episodes per seed; mean ± std over seeds), wall time on
# the shared 2-core dev CPU with compile. Raw numbers: docs/presets_ladder.json.
# What the trust-region presets share: the critic's Optax epochs after the natural
# step, GAE λ, 0.5M steps, no lr annealing and no gradient clipping.
_TRUST_REGION = dict(
    lam=0.97,
    lr=1e-3,
    num_epochs=5,
    num_minibatches=8,
    total_timesteps=500_000,
    anneal_lr=False,
    max_grad_norm=_INF,
)
LADDER = dict(
    [
        _p(
            "cartpole-trpo",
            "TRPO: natural step (10 CG iterations, damping 0.1) in a KL ball δ = 0.01, "
            "backtracking line search; GAE(0.99, 0.97); critic fit by 5 epochs × 8 "
            "minibatches of Adam after the step. 32 envs × 64 steps.",
            "eval return 500.0 ± 0.0 (SE) over 8 seeds, 0.50M env steps, 348 s (with "
            "δ = 0.02 one seed in 4 to 8 fell back: 231 and 332)",
            475.0,
            estimator="trpo",
            num_envs=32,
            num_steps=64,
            delta=0.01,
            **_TRUST_REGION,
        ),
        _p(
            "acrobot-trpo",
            "TRPO on Acrobot-v1: cartpole-trpo's settings with δ = 0.02 (GAE(0.99, 0.97), "
            "critic 5 epochs × 8 minibatches) on acrobot-ppo's 8 envs × 128 steps.",
            "eval return -78.7 ± 3.8 (SE) over 4 seeds (-75.7, -79.0, -71.1, -88.8), 0.50M "
            "env steps, 215 s; training return IQM -80.4 [-83.4, -76.9] (95% bootstrap CI) "
            "over 8 seeds (scripts/ladder.py)",
            -100.0,
            env="Acrobot-v1",
            estimator="trpo",
            num_envs=8,
            num_steps=128,
            delta=0.02,
            **_TRUST_REGION,
        ),
        _p(
            "pendulum-trpo",
            "TRPO on Pendulum-v1 (Gaussian policy): cartpole-trpo's settings with δ = 0.02 on "
            "pendulum-ppo's 16 envs × 128 steps, γ = 0.95, log-std -0.5, critic 5 epochs × "
            "32 minibatches.",
            "eval return -366.1 ± 96.8 (SE) over 4 seeds (-614.9, -422.3, -235.4, -191.8), "
            "0.50M env steps, 174 s; training return IQM -239.7 [-353.9, -193.4] (95% "
            "bootstrap CI) over 8 seeds, per seed -155 to -613 (scripts/ladder.py)",
            -450.0,
            env="Pendulum-v1",
            estimator="trpo",
            num_envs=16,
            num_steps=128,
            gamma=0.95,
            log_std_init=-0.5,
            delta=0.02,
            **(_TRUST_REGION | {"num_minibatches": 32}),
        ),
        _p(
            "cartpole-npg",
            "Natural policy gradient: the cartpole-trpo settings without the line search "
            "(the whole δ-scaled natural step every update).",
            "eval return 491.8 ± 8.2 (SE) over 4 seeds, 0.50M env steps, 562 s",
            450.0,
            estimator="npg",
            num_envs=32,
            num_steps=64,
            delta=0.02,
            **_TRUST_REGION,
        ),
        _p(
            "cartpole-rloo",
            "RLOO: 8 start states × G = 8 complete episodes, leave-one-out baseline, "
            "undiscounted return, one Adam step per batch.",
            "eval return 500.0 ± 0.0 (SE) over 4 seeds, 2.24M env steps, 356 s",
            400.0,
            estimator="rloo",
            num_envs=64,
            group_size=8,
            gamma=1.0,
            lr=3e-3,
            total_timesteps=3_200_000,
            max_grad_norm=_INF,
        ),
        _p(
            "cartpole-grpo",
            "GRPO: 8 start states × G = 8 episodes, (R − mean)/std per group, per-episode "
            "length normalisation, PPO clipping (ε 0.2) over 4 epochs × 8 minibatches.",
            "eval return 500.0 ± 0.0 (SE) over 4 seeds, 1.18M env steps, 194 s",
            400.0,
            estimator="grpo",
            num_envs=64,
            group_size=8,
            gamma=1.0,
            lr=3e-3,
            num_epochs=4,
            num_minibatches=8,
            total_timesteps=1_600_000,
            max_grad_norm=_INF,
        ),
        _p(
            "sequence-rloo",
            "RLOO on Sequence-v0 (8 tokens of 8, terminal reward = fraction following the "
            "hidden rule; random policy 0.125): 8 prompts × G = 8 completions per update.",
            "eval return 0.620 ± 0.020 (SE) over 4 seeds, 0.15M env steps, 83 s",
            0.5,
            env="Sequence-v0",
            estimator="rloo",
            num_envs=64,
            group_size=8,
            gamma=1.0,
            lr=1e-2,
            total_timesteps=64 * 8 * 300,
            anneal_lr=False,
            max_grad_norm=_INF,
        ),
        _p(
            "sequence-grpo",
            "GRPO on Sequence-v0: 8 prompts × G = 8 completions, group-normalised "
            "rewards, PPO clipping over 4 epochs × 4 minibatches.",
            "eval return 0.715 ± 0.024 (SE) over 4 seeds, 0.15M env steps, 90 s",
            0.5,
            env="Sequence-v0",
            estimator="grpo",
            num_envs=64,
            group_size=8,
            gamma=1.0,
            lr=3e-3,
            num_epochs=4,
            num_minibatches=4,
            total_timesteps=64 * 8 * 300,
            anneal_lr=False,
            max_grad_norm=_INF,
        ),
        _p(
            "sequence-reinforce",
            "REINFORCE on Sequence-v0 for comparison: 64 prompts, one completion each, "
            "the terminal reward as Ψ (no baseline), one Adam step per batch.",
            "eval return 0.560 ± 0.015 (SE) over 4 seeds, 0.15M env steps, 204 s",
            0.5,
            env="Sequence-v0",
            estimator="reinforce",
            num_envs=64,
            gamma=1.0,
            lr=1e-2,
            total_timesteps=64 * 8 * 300,
            anneal_lr=False,
            max_grad_norm=_INF,
        ),
        _p(
            "sequence-ppo",
            "PPO on Sequence-v0 for comparison: 64 envs × 8-step segments (one completion "
            "each), a learned critic, GAE(1, 0.95), 4 epochs × 4 minibatches.",
            "eval return 0.737 ± 0.026 (SE) over 4 seeds, 0.15M env steps, 134 s",
            0.5,
            env="Sequence-v0",
            estimator="ppo",
            num_envs=64,
            num_steps=8,
            gamma=1.0,
            lam=0.95,
            lr=3e-3,
            num_epochs=4,
            num_minibatches=4,
            total_timesteps=64 * 8 * 300,
            anneal_lr=False,
            max_grad_norm=_INF,
        ),
    ]
)

# --- One task of each environment suite (docs/suites.md, "Suite presets") ---------
SUITES = dict(
    [
        _p(
            "navix-doorkey-5x5-ppo",
            "PPO on Navix DoorKey-5x5 (pick up the key, open the door, reach the goal; "
            "reward 1 at the goal), the symbolic grid flattened into an MLP.",
            "eval return 0.83 ± 0.06 (SE) over 5 seeds, 131k steps, 36 s for all seeds "
            "(random policy 0.05)",
            0.5,
            env="navix/Navix-DoorKey-5x5-v0",
            num_envs=16,
            num_steps=128,
            total_timesteps=131_072,
            lr=1e-3,
            ent_coef=0.01,
        ),
        _p(
            "navix-doorkey-8x8-ppo",
            "PPO on Navix DoorKey-8x8 with the hyperparameters of navix's rejax PPO baseline "
            "(baselines/rejax/configs/navix_doorkey_8x8_1m.yaml): γ 0.95, λ 0.9, lr 3e-4, "
            "2 epochs of one minibatch, 16 envs × 128 steps.",
            "eval return 0.00 ± 0.00 over 5 seeds at 131k steps (185 s): does not learn "
            "here; navix's rejax PPO baseline reports 0.77 ± 0.08, but rejax 0.1.3 run here "
            "with the same config on navix 0.7.4 also stays at 0.01 ± 0.01",
            0.5,
            env="navix/Navix-DoorKey-8x8-v0",
            num_envs=16,
            num_steps=128,
            total_timesteps=131_072,
            lr=3e-4,
            gamma=0.95,
            lam=0.9,
            num_epochs=2,
            num_minibatches=1,
            max_grad_norm=1.0,
            ent_coef=0.01,
            anneal_lr=False,
        ),
        _p(
            "jumanji-snake-ppo",
            "PPO on Jumanji Snake-v1 (12×12 grid, +1 per fruit), observation fields flattened.",
            "eval return 0.96 ± 0.12 (SE) fruits over 5 seeds, 524k steps, 427 s for all "
            "seeds on a loaded CPU (random policy 0.09; 0.58 ± 0.08 at 131k steps)",
            1.0,
            env="jumanji/Snake-v1",
            num_envs=16,
            num_steps=128,
            total_timesteps=524_288,
            lr=1e-3,
            ent_coef=0.01,
        ),
        _p(
            "craftax-classic-ppo",
            "PPO on Craftax-Classic (symbolic observation; +1 per first-time achievement, "
            "±0.1 per health point), 16 envs × 128 steps, 8 updates: what fits a 2-core CPU.",
            "eval return 2.30 ± 0.22 (SE) over 5 seeds after only 16k steps, 1313 s for all "
            "seeds (647 s training, the rest evaluation); random policy 1.15 ± 0.28: a start, "
            "not a trained agent",
            1.0,
            env="craftax/Craftax-Classic-Symbolic-v1",
            num_envs=16,
            num_steps=128,
            total_timesteps=16_384,
            lr=3e-4,
            ent_coef=0.01,
            hidden_sizes=(256, 256),
        ),
        _p(
            "brax-inverted-pendulum-ppo",
            "PPO on Brax inverted_pendulum (reward 1 per step upright, 1000-step limit), "
            "normalised observations.",
            "eval return 1000.0 ± 0.0 (SE) over 5 seeds (the 1000-step maximum), 131k steps, "
            "138 s for all seeds (random policy 4.8)",
            100.0,
            env="brax/inverted_pendulum",
            num_envs=16,
            num_steps=64,
            total_timesteps=131_072,
            lr=1e-3,
            normalize_obs=True,
        ),
    ]
)

PRESETS: dict[str, Preset] = {**CARTPOLE, **OTHER, **LADDER, **SUITES}


def get_preset(name: str) -> Preset:
    """Look up a preset by name; a clear error lists the allowed names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"preset={name!r} is unknown; allowed: {', '.join(sorted(PRESETS))}"
        ) from None
