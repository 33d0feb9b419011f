"""Reproduce docs/variance.md's tables for the group and natural-gradient estimators.

Both run on exact tabular MDPs (``jaxpg.variance.tabular``), in seconds on a CPU:

* groups: on ``random_layered(3, layers=2, p_end=0.5)`` (θ ~ N(0, 1), seed 4), the
  exact expectation of each group estimator (``tabular.exact_group_mean``) against
  ∇J, and the trace of the per-group covariance from sampled groups (all estimators
  on the same groups; "reinforce" is the mean of G REINFORCE terms on them);
* natural: on ``random_layered(0, layers=2)`` (θ seed 1), the mean cosine ± SE of
  the trainer's sampled ``npg`` step with the exact natural gradient per N
  (``natural_cos.natural_cosines``).

Example:
  python scripts/reproduce_variance_tabular.py --groups 20000 --repeats 32
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def group_table(num_groups: int, group_size: int, seed: int) -> str:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxpg.variance import Estimator, group_means, pool_gradients, sample_episodes, tabular

    mdp = tabular.random_layered(3, layers=2, p_end=0.5)
    theta = np.random.default_rng(4).normal(size=(mdp.num_states, mdp.num_actions))
    kinds = ("reinforce", "rloo", "grpo_nostd", "grpo")
    with jax.enable_x64(True):
        th = jnp.asarray(theta)
        enum = tabular.enumerate_trajectories(mdp)
        grad_j = np.asarray(tabular.exact_gradient(mdp, th))
        exact = {"reinforce": grad_j}
        for k in kinds[1:]:
            est = Estimator(k, group_size=group_size)
            exact[k] = np.asarray(tabular.exact_group_mean(enum, th, est))
    env = tabular.TabularEnv(mdp)
    th32 = jnp.asarray(theta, jnp.float32)
    pool = sample_episodes(
        jax.random.key(seed), env, env.default_params, tabular.softmax_policy, th32,
        group_size * num_groups, chunk_size=8192, group_size=group_size,
    )  # fmt: skip
    ests = [Estimator(k, group_size=group_size) for k in kinds]
    grads = pool_gradients(tabular.softmax_policy, th32, pool, ests, chunk_size=8192)
    lines = [
        "| estimator | cos(E ĝ, ∇J) | ‖E ĝ‖/‖∇J‖ | tr Cov(group estimate) | tr Cov / ‖E ĝ‖² |",
        "|---|---|---|---|---|",
    ]
    norm_j = np.linalg.norm(grad_j)
    for k in kinds:
        m = exact[k]
        per_group = np.asarray(group_means(grads[k], group_size), np.float64)
        tr = float(np.trace(np.cov(per_group.T)))
        lines.append(
            f"| {k} | {m @ grad_j / (np.linalg.norm(m) * norm_j):.4f} | "
            f"{np.linalg.norm(m) / norm_j:.3f} | {tr:.3f} | {tr / (m @ m):.2f} |"
        )
    return "\n".join(lines)


def natural_table(sizes: list[int], repeats: int, seed: int) -> str:
    import jax
    import numpy as np

    from jaxpg.variance import natural_cos, tabular

    mdp = tabular.random_layered(0, layers=2)
    theta = np.random.default_rng(1).normal(size=(mdp.num_states, mdp.num_actions))
    out = natural_cos.natural_cosines(jax.random.key(seed), mdp, theta, sizes, repeats=repeats)
    head = "| N | " + " | ".join(f"{n:,}" for n in out.batch_sizes) + " |"
    return "\n".join(
        [
            head,
            "|---" * (len(out.batch_sizes) + 1) + "|",
            "| mean cosine | " + " | ".join(f"{c:.4f}" for c in out.mean) + " |",
            "| SE | " + " | ".join(f"{s:.4f}" for s in out.se) + " |",
            f"(CG ceiling {float(out.exact.ceiling):.6f})",
        ]
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--groups", type=int, default=20000, help="sampled groups (default 20000)")
    p.add_argument("--group-size", type=int, default=4, help="G (default 4)")
    p.add_argument(
        "--sizes", default="4,16,64,256,1024,4096", help="batch sizes N of the natural table"
    )
    p.add_argument("--repeats", type=int, default=32, help="batches per N (default 32)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    t = time.perf_counter()
    print(group_table(args.groups, args.group_size, args.seed), flush=True)
    print(f"({time.perf_counter() - t:.1f} s)\n", flush=True)
    t = time.perf_counter()
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    print(natural_table(sizes, args.repeats, args.seed), flush=True)
    print(f"({time.perf_counter() - t:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
