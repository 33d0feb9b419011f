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

MAIN = ("E1_reinforce", "E2_reward_to_go", "E3_Vagent", "E3_Vstar", "E4_gae_l0.95",
        "E4_gae_g0.99_l0.95")
COLORS = dict(zip(MAIN, ("tab:red", "tab:orange", "tab:green", "tab:olive", "tab:blue",
                         "tab:purple"), strict=True))


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
    cols = ("tr_sigma1", "B", "B_ref", "scale_ratio", "scale_ratio_se", "rel_bias",
            "rel_bias_noise", "ratio_to_E1", "N_cos90")
    return [r | {c: by[(r["checkpoint"], r["estimator"])].get(c) for c in cols} for r in rows]


def _fmt(x, spec=".3g") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return format(x, spec)


def markdown_table(summary: dict, names=None) -> str:
    """T1 table: checkpoint × estimator with tr Σ₁, B, ratio to E1, bias, N for cos ≥ 0.9."""
    lines = ["| checkpoint (mean length) | estimator | tr Σ₁ | B | tr Σ₁ / tr Σ₁(E1) [95% CI] "
             "| scale ratio ± SE | rel. bias (noise floor) | N for cos ≥ 0.9 (4.26·B) |",
             "|---|---|---|---|---|---|---|---|"]
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
                f"| {_fmt(s['N_cos90'])} ({_fmt(s['N_cos90_pred'], '.0f')}) |")
    return "\n".join(lines) + "\n"


def _series(rows, ckpt, name, key):
    sel = [r for r in rows if r["checkpoint"] == ckpt and r["estimator"] == name]
    sel.sort(key=lambda r: r["N"])
    n = np.array([r["N"] for r in sel], float)
    y = np.array([np.nan if r.get(key) is None else r[key] for r in sel], float)
    lo = np.array([np.nan if r.get(key + "_lo") is None else r[key + "_lo"] for r in sel], float)
    hi = np.array([np.nan if r.get(key + "_hi") is None else r[key + "_hi"] for r in sel], float)
    return n, y, lo, hi


def figures(rows: list[dict], summary: dict) -> dict:
    """``{file stem: Figure}``: cosines vs N, tr Σ₁ bars, λ chart, batch baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ckpts = [c["name"] for c in summary["checkpoints"]]
    info = {c["name"]: c for c in summary["checkpoints"]}
    figs = {}

    fig, axes = plt.subplots(2, len(ckpts), figsize=(3.2 * len(ckpts), 5.6), sharey="row",
                             squeeze=False)
    for j, ck in enumerate(ckpts):
        for i, key in enumerate(("pairwise_cos", "cos_ref")):
            ax = axes[i, j]
            for name in MAIN:
                n, y, lo, hi = _series(rows, ck, name, key)
                if n.size == 0:
                    continue
                ax.plot(n, y, "o-", ms=3, color=COLORS[name], label=name)
                ax.fill_between(n, lo, hi, color=COLORS[name], alpha=0.15, lw=0)
                if key == "cos_ref" and name == "E3_Vagent":
                    _, pred, _, _ = _series(rows, ck, name, "pred_cos_ref")
                    ax.plot(n, pred, "--", color=COLORS[name], lw=1)
            ax.set_xscale("log", base=2)
            ax.axhline(0.9, color="grey", lw=0.5, ls=":")
            ax.set_ylim(-0.1, 1.02)
            ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(f"{ck} (mean len {info[ck]['mean_length']:.0f})", fontsize=9)
            else:
                ax.set_xlabel("batch size N (trajectories)")
        axes[0, 0].set_ylabel("mean pairwise cosine")
        axes[1, 0].set_ylabel("cosine to g_ref")
    axes[0, 0].legend(fontsize=6, loc="upper left")
    fig.suptitle("CartPole-v1: batch-estimate agreement vs N (95% bootstrap CI; dashed: "
                 "√(N/(N+B)) for E3)", fontsize=9)
    fig.tight_layout()
    figs["variance_cosine"] = fig

    names = [n for n in summary["checkpoints"][0]["estimators"] if not n.startswith("E3_")
             or n in ("E3_Vagent", "E3_Vstar")]
    fig, ax = plt.subplots(figsize=(9, 3.8))
    width = 0.8 / len(ckpts)
    x = np.arange(len(names))
    for j, ck in enumerate(ckpts):
        est = info[ck]["estimators"]
        ax.bar(x + j * width, [est[n]["tr_sigma1"] for n in names], width,
               label=f"{ck} (len {info[ck]['mean_length']:.0f})")
    ax.set_yscale("log")
    ax.set_xticks(x + 0.4 - width / 2, [n.replace("_", " ") for n in names], rotation=30,
                  ha="right", fontsize=7)
    ax.set_ylabel("tr Σ₁ (per trajectory)")
    ax.set_title("Trace of the per-trajectory gradient covariance", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    figs["variance_trace"] = fig

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ck in ckpts:
        est = info[ck]["estimators"]
        lam = sorted((float(k.split("_l")[1]), k) for k in est if k.startswith("E4_gae_l"))
        lam.append((1.0, "E3_Vagent"))
        ls = [v for v, _ in lam]
        bias = [est[k]["rel_bias"] if est[k]["rel_bias"] is not None else 0.0 for _, k in lam]
        axes[0].plot(ls, bias, "o-", ms=3, label=ck)
        axes[1].plot(ls, [est[k]["tr_sigma1"] / est["E3_Vagent"]["tr_sigma1"] for _, k in lam],
                     "o-", ms=3, label=ck)
    axes[0].set_ylabel("relative bias ‖E ĝ − g_ref‖/‖g_ref‖ (debiased)")
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
    for j, ck in enumerate(ckpts):
        for kind, mk in markers.items():
            pts = sorted((s["batch_N"], s["scale_ratio"], s["scale_ratio_se"])
                         for k, s in info[ck]["estimators"].items()
                         if k.startswith(f"E3_{kind}_N"))
            if pts:
                n, r, se = (np.array(v, float) for v in zip(*pts, strict=True))
                ax.errorbar(n * (1 + 0.06 * j), r, 2 * se, fmt=mk, ms=4, capsize=2,
                            color=f"C{j}", label=f"{kind} · {ck}" if kind == "mean" or j == 0
                            else None)
    nn = np.geomspace(2, max(summary["config"]["batch_baseline_sizes"]), 50)
    ax.plot(nn, 1 - 1 / nn, "k--", lw=1, label="1 − 1/N")
    ax.axhline(1.0, color="k", lw=0.5)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size N")
    ax.set_ylabel("scale ratio  E ĝ·g_ref / ‖g_ref‖²  (±2 SE)")
    ax.set_title("Same-batch baselines: mean (o), leave-one-out (□), refit critic (△)",
                 fontsize=8)
    ax.legend(fontsize=6, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    figs["variance_batch_baselines"] = fig
    return figs
