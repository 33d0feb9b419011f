"""Drive the one compiled update from your own Python loop.

    python examples/custom_loop.py

``make_update`` is the library's jitted update: rollout, returns/advantages, the
estimator's loss and the Optax step. Hyperparameters are arguments, so changing
the learning rate between updates does not recompile.
"""

import jax
import numpy as np

import jaxpg

config = jaxpg.Config(estimator="reward_to_go", num_envs=16, total_timesteps=8192)
init, update = jaxpg.make_init(config), jaxpg.make_update(config)
state = init(jax.random.key(1))
hparams = config.hparams()
for i in range(6):
    lr = 1e-2 if i < 3 else 3e-3  # a hand-made schedule: same program, new value
    state, metrics = update(state, hparams._replace(lr=np.float32(lr)))
    print(
        f"update {i + 1}  lr {lr:g}  episode return "
        f"{float(metrics['episode_return']):6.1f}  grad norm {float(metrics['grad_norm']):.3f}"
    )
