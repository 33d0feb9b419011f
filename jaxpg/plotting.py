"""Learning-curve plot of a run's ``metrics.csv`` (matplotlib, Agg backend)."""

from __future__ import annotations

import os
from pathlib import Path


def plot_learning_curve(csv_path: str | os.PathLike, png_path: str | os.PathLike) -> None:
    """Plot episode return, losses and entropy/KL against env steps into ``png_path``.

    Three panels: the per-update mean return with a moving mean, policy and value
    losses, entropy with approx KL on a second axis. The PNG is written atomically.

    Args:
      csv_path: a run's ``metrics.csv`` (:func:`jaxpg.progress.read_metrics`).
      png_path: the image to write.

    Raises:
      WriteFailed: the PNG could not be written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from jaxpg.files import write_bytes_atomic
    from jaxpg.progress import read_metrics

    m = read_metrics(csv_path)
    x = m["env_steps"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), constrained_layout=True)
    ret = m["episode_return"]
    axes[0].plot(x, ret, lw=0.8, alpha=0.4, color="C0", label="per update")
    if len(ret) >= 10:
        k = max(1, len(ret) // 50)
        smooth = np.convolve(
            np.nan_to_num(ret, nan=np.nanmin(ret) if np.isfinite(ret).any() else 0.0),
            np.ones(k) / k,
            mode="valid",
        )
        axes[0].plot(x[k - 1 :], smooth, color="C0", label=f"moving mean ({k})")
    axes[0].set(title="mean episode return", xlabel="env steps")
    axes[0].legend(loc="lower right", fontsize=8)
    for name in ("policy_loss", "value_loss"):
        axes[1].plot(x, m[name], lw=0.8, label=name)
    axes[1].set(title="losses", xlabel="env steps")
    axes[1].legend(fontsize=8)
    axes[2].plot(x, m["entropy"], lw=0.8, label="entropy")
    ax2 = axes[2].twinx()
    ax2.plot(x, m["approx_kl"], lw=0.8, color="C3", label="approx KL")
    axes[2].set(title="entropy (left), approx KL (right)", xlabel="env steps")
    for ax in axes:
        ax.grid(alpha=0.3)
    png_path = Path(png_path)
    tmp = png_path.with_name(f".{png_path.name}.render.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    write_bytes_atomic(png_path, tmp.read_bytes())
    tmp.unlink()
