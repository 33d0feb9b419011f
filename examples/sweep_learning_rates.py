"""Three learning rates × 2 seeds of vanilla policy gradient, in one compiled program.

    python examples/sweep_learning_rates.py

The learning rate is a traced hyperparameter, so the grid adds no compile; the
statistics over seeds (mean, bootstrap CI, IQM and its CI) come from ``jaxpg.stats``.
"""

import jaxpg
from jaxpg.sweep import sweep

config = jaxpg.Config(estimator="vpg", total_timesteps=4096, num_envs=8, num_steps=64)
result = sweep(config, seeds=2, grid={"lr": [3e-3, 1e-2, 3e-2]})
for row in sorted(result.summary, key=lambda r: r["rank"]):
    print(
        f"rank {row['rank']}  lr {row['lr']:g}  final return {row['mean']:6.1f} "
        f"(95% CI {row['ci_low']:.1f}..{row['ci_high']:.1f}, IQM {row['iqm']:.1f})"
    )
print(f"{len(result.runs)} runs in {len(result.programs)} compiled program(s)")
