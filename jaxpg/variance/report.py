"""Tables and figures for the variance experiment (no file I/O here).

``csv_text`` and ``markdown_table`` format the rows and summary of
:func:`jaxpg.variance.experiment.run`; ``figures`` returns matplotlib figures
(Agg backend) that the command saves as PNG.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

MAIN = (
    "E1_reinforce",
    "E2_reward_to_go",
    "E3_Vagent",
    "E3_Vstar",
    "E4_gae_l0.95",
    "E4_gae_g0.99_l0.95",
)
COLORS = dict(
    zip(
        MAIN,
        ("tab:red", "tab:orange", "tab:green", "tab:olive", "tab:blue", "tab:purple"),
        strict=True,
    )
)


def csv_text(rows: list[dict]) -> str:
    """All rows as CSV with the union of their keys (estimator-level columns appended)."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in keys})
    return buf.getvalue()


def merge_rows(rows: list[dict], summary: dict) -> list[dict]:
    """Attach each estimator's whole-pool summary (tr Σ₁, B, bias...) to its rows."""
    by = {(c["name"], k): v for c in summary["checkpoints"] for k, v in c["estimators"].items()}
    cols = (
        "tr_sigma1",
        "B",
        "B_ref",
        "scale_ratio",
        "scale_ratio_se",
        "rel_bias",
        "rel_bias_noise",
        "ratio_to_E1",
        "N_cos90",
    )
    return [r | {c: by[(r["checkpoint"], r["estimator"])].get(c) for c in cols} for r in rows]


def _fmt(x, spec=".3g") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return format(x, spec)


def markdown_table(summary: dict, names=None) -> str:
    """T1 table: checkpoint × estimator with tr Σ₁, B, ratio to E1, bias, N for cos ≥ 0.9."""
    lines = [
        "| checkpoint (mean length) | estimator | tr Σ₁ | B | tr Σ₁ / tr Σ₁(E1) [95% CI] "
        "| scale ratio ± SE | rel. bias (noise floor) | N for cos ≥ 0.9 (4.26·B) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in summary["checkpoints"]:
        for name, s in c["estimators"].items():
            if names is not None and name not in names:
                continue
            ci = ""
            if s.get("ratio_to_E1_lo") is not None:
                ci = f" [{_fmt(s['ratio_to_E1_lo'])}, {_fmt(s['ratio_to_E1_hi'])}]"
            lines.append(
                f"| {c['name']} ({c['mean_length']:.0f}) | {name} | {_fmt(s['tr_sigma1'])} "
                f"| {_fmt(s['B_ref'])} | {_fmt(s['ratio_to_E1'])}{ci} "
                f"| {_fmt(s['scale_ratio'], '.3f')} ± {_fmt(s['scale_ratio_se'], '.3f')} "
                f"| {_fmt(s['rel_bias'], '.2f')} ({_fmt(s['rel_bias_noise'], '.2f')}) "
                f"| {_fmt(s['N_cos90'])} ({_fmt(s['N_cos90_pred'], '.0f')}) |"
            )
    return "\n".join(lines) + "\n"


def _series(rows, ckpt, name, key):
    sel = [r for r in rows if r["checkpoint"] == ckpt and r["estimator"] == name]
    sel.sort(key=lambda r: r["N"])
    n = np.array([r["N"] for r in sel], float)
    y = np.array([np.nan if r.get(key) is None else r[key] for r in sel], float)
    lo = np.array([np.nan if r.get(key + "_lo") is None else r[key + "_lo"] for r in sel], float)
    hi = np.array([np.nan if r.get(key + "_hi") is None else r[key + "_hi"] for r in sel], float)
    return n, y, lo, hi


def _levels(summary: dict) -> dict[str, list[dict]]:
    """Checkpoints grouped by return level (one entry per training seed)."""
    out: dict[str, list[dict]] = {}
    for c in summary["checkpoints"]:
        out.setdefault(c.get("level", c["name"]), []).append(c)
    return out


def figures(rows: list[dict], summary: dict) -> dict:
    """``{file stem: Figure}``: cosines vs N, tr Σ₁ bars, λ chart, batch baselines.

    One column (or colour) per return level; with several training seeds each
    seed is a thin line of the same colour.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = _levels(summary)
    many = max(len(v) for v in levels.values()) > 1
    lw, alpha = (0.9, 0.6) if many else (1.5, 1.0)
    figs = {}

    fig, axes = plt.subplots(
        2, len(levels), figsize=(3.2 * len(levels), 5.6), sharey="row", squeeze=False
    )
    for j, (level, group) in enumerate(levels.items()):
        for i, key in enumerate(("pairwise_cos", "cos_ref")):
            ax = axes[i, j]
            for k, c in enumerate(group):
                for name in MAIN:
                    n, y, lo, hi = _series(rows, c["name"], name, key)
                    if n.size == 0:
                        continue
                    ax.plot(
                        n,
                        y,
                        "o-",
                        ms=2.5,
                        lw=lw,
                        alpha=alpha,
                        color=COLORS[name],
                        label=name if k == 0 else None,
                    )
                    if not many:
                        ax.fill_between(n, lo, hi, color=COLORS[name], alpha=0.15, lw=0)
                    if key == "cos_ref" and name == "E3_Vagent" and k == 0:
                        _, pred, _, _ = _series(rows, c["name"], name, "pred_cos_ref")
                        ax.plot(n, pred, "--", color=COLORS[name], lw=1)
            ax.set_xscale("log", base=2)
            ax.axhline(0.9, color="grey", lw=0.5, ls=":")
            ax.set_ylim(-0.1, 1.02)
            ax.grid(alpha=0.3)
            if i == 0:
                lens = ", ".join(f"{c['mean_length']:.0f}" for c in group)
                ax.set_title(f"{level} (mean len {lens})", fontsize=9)
            else:
                ax.set_xlabel("batch size N (trajectories)")
    axes[0, 0].set_ylabel("mean pairwise cosine")
    axes[1, 0].set_ylabel("cosine to g_ref")
    axes[0, 0].legend(fontsize=6, loc="upper left")
    band = "a line per seed" if many else "95% CI"
    fig.suptitle(
        f"CartPole-v1: agreement of batch estimates vs N ({band}; dashed: √(N/(N+B)), E3-Vagent)",
        fontsize=8,
    )
    fig.tight_layout()
    figs["variance_cosine"] = fig

    first = summary["checkpoints"][0]["estimators"]
    names = [n for n in first if "_N" not in n]  # batch-dependent ones are per N
    fig, ax = plt.subplots(figsize=(9, 3.8))
    width = 0.8 / len(levels)
    x = np.arange(len(names))
    for j, (level, group) in enumerate(levels.items()):
        tr = np.array([[c["estimators"][n]["tr_sigma1"] for n in names] for c in group])
        mid = np.exp(np.log(tr).mean(0))
        err = [mid - tr.min(0), tr.max(0) - mid] if many else None
        lens = "/".join(f"{c['mean_length']:.0f}" for c in group)
        ax.bar(x + j * width, mid, width, yerr=err, capsize=2, label=f"{level} (len {lens})")
    ax.set_yscale("log")
    ax.set_xticks(
        x + 0.4 - width / 2,
        [n.replace("_", " ") for n in names],
        rotation=30,
        ha="right",
        fontsize=7,
    )
    ax.set_ylabel("tr Σ₁ (per trajectory)")
    ax.set_title(
        "Trace of the per-trajectory gradient covariance"
        + (" (geometric mean, min–max over seeds)" if many else ""),
        fontsize=9,
    )
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    figs["variance_trace"] = fig

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for j, (level, group) in enumerate(levels.items()):
        for k, c in enumerate(group):
            est = c["estimators"]
            lam = sorted((float(n.split("_l")[1]), n) for n in est if n.startswith("E4_gae_l"))
            lam.append((1.0, "E3_Vagent"))
            ls = [v for v, _ in lam]
            bias = [est[n]["rel_bias"] or 0.0 for _, n in lam]
            ratio = [est[n]["tr_sigma1"] / est["E3_Vagent"]["tr_sigma1"] for _, n in lam]
            label = level if k == 0 else None
            axes[0].plot(ls, bias, "o-", ms=3, lw=lw, alpha=alpha, color=f"C{j}", label=label)
            axes[1].plot(ls, ratio, "o-", ms=3, lw=lw, alpha=alpha, color=f"C{j}", label=label)
    axes[0].set_ylabel("relative bias vs T1 (debiased; 0 = within noise)")
    axes[1].set_ylabel("tr Σ₁ / tr Σ₁(λ = 1)")
    axes[1].set_yscale("log")
    for ax in axes:
        ax.set_xlabel("GAE λ (γ = 1, checkpoint critic)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("GAE: bias vs variance as λ falls (target T1)", fontsize=9)
    fig.tight_layout()
    figs["variance_lambda"] = fig

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    markers = {"mean": "o", "loo": "s", "refit": "^"}
    for j, (level, group) in enumerate(levels.items()):
        for k, c in enumerate(group):
            for kind, mk in markers.items():
                pts = sorted(
                    (s["batch_N"], s["scale_ratio"], s["scale_ratio_se"])
                    for n, s in c["estimators"].items()
                    if n.startswith(f"E3_{kind}_N")
                )
                if not pts:
                    continue
                n, r, se = (np.array(v, float) for v in zip(*pts, strict=True))
                shift = 1 + 0.05 * (j * len(group) + k)
                ax.errorbar(
                    n * shift,
                    r,
                    2 * se,
                    fmt=mk,
                    ms=4,
                    capsize=2,
                    color=f"C{j}",
                    alpha=alpha,
                    label=level if kind == "mean" and k == 0 else None,
                )
    nn = np.geomspace(2, max(summary["config"]["batch_baseline_sizes"]), 50)
    ax.plot(nn, 1 - 1 / nn, "k--", lw=1, label="1 − 1/N")
    ax.axhline(1.0, color="k", lw=0.5)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size N")
    ax.set_ylabel("scale ratio  E ĝ·g_ref / ‖g_ref‖²  (±2 SE)")
    ax.set_title("Same-batch baselines: mean (o), leave-one-out (□), refit critic (△)", fontsize=8)
    ax.legend(fontsize=6, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    figs["variance_batch_baselines"] = fig
    return figs
