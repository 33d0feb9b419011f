"""Train PPO on CartPole-v1 as one compiled program and print its learning curve.

python examples/train_cartpole.py                 # 4,096 env steps, seconds on a CPU
python examples/train_cartpole.py --steps 500000  # learns CartPole (return near 500)
"""

import argparse

import jax
import numpy as np

import jaxpg
from jaxpg.stats import final_return

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--steps", type=int, default=4096, help="total env steps")
args = parser.parse_args()

config = jaxpg.Config(total_timesteps=args.steps, num_envs=8, num_steps=64, num_minibatches=4)
train = jax.jit(jaxpg.make_train(config))  # the whole run: one XLA program
out = train(jax.random.key(0))
returns = np.asarray(out.metrics["episode_return"])  # [num_updates], NaN until an episode ends
steps = np.asarray(out.metrics["env_steps"])
for u in range(0, len(returns), max(1, len(returns) // 8)):
    print(f"update {u + 1:4d}  env steps {steps[u]:8.0f}  mean episode return {returns[u]:7.1f}")
print(f"final return {final_return(returns):.1f} after {len(returns)} updates")
