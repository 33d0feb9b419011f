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
    by = {
        (c["name"], k): v
        for c in summary["checkpoints"]
        for k, v in c.get("estimators", {}).items()
    }
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


# --- the other parts: tables ----------------------------------------------------------


def _pm(v: dict, spec=".3g") -> str:
    return f"{_fmt(v['value'], spec)} ± {_fmt(v['se'], '.2g')}"


def _with(summary: dict, part: str) -> list[dict]:
    return [c for c in summary["checkpoints"] if part in c]


def signal_ok(c: dict) -> bool:
    """True when the checkpoint's debiased ‖g_ref‖² is > 0 (not a saturated policy)."""
    return c["ref_norm_sq"] - c["ref_tr_sigma1"] / c["ref_size"] > 0


def decomposition_table(summary: dict) -> str:
    """Σ_s, Σ_τ, Σ_a per baseline and the totals, ± SE, per checkpoint."""
    lines = [
        "| checkpoint (mean length) | Σ_s (states) | Σ_τ (trajectory) | Σ_a none | Σ_a V_φ "
        "| Σ_a V* | total none | total V_φ | total V* | Σ_a removed by V_φ / V* |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in _with(summary, "decomposition"):
        d = c["decomposition"]
        lines.append(
            f"| {c['name']} ({c['mean_length']:.0f}) | {_pm(d['state'])} | {_pm(d['trajectory'])} "
            f"| {_pm(d['action/none'])} | {_pm(d['action/V_agent'])} | {_pm(d['action/V_star'])} "
            f"| {_pm(d['total/none'])} | {_pm(d['total/V_agent'])} | {_pm(d['total/V_star'])} "
            f"| {_pm(d['removed/V_agent'])} / {_pm(d['removed/V_star'])} |"
        )
    return "\n".join(lines) + "\n"


def law_table(summary: dict) -> str:
    """N·tr Σ_N / tr Σ₁ [95% CI] per checkpoint, N and estimator, and the verdicts."""
    out = []
    for c in _with(summary, "law"):
        rows = c["law"]["rows"]
        names = list(dict.fromkeys(r["estimator"] for r in rows))
        out.append(
            f"**{c['name']}** (pool {c['law']['pool']}, mean length {c['mean_length']:.0f})\n"
        )
        out.append("| N | M | " + " | ".join(names) + " |")
        out.append("|---|---|" + "---|" * len(names))
        for n in sorted({r["N"] for r in rows}):
            sel = {r["estimator"]: r for r in rows if r["N"] == n}
            cells = [
                f"{sel[k]['ratio']:.3f} [{sel[k]['ratio_lo']:.2f}, {sel[k]['ratio_hi']:.2f}]"
                for k in names
            ]
            out.append(f"| {n} | {sel[names[0]]['M']} | " + " | ".join(cells) + " |")
        v = c["law"]["verdict"]
        out.append(
            "| R4 (all N ≥ 4 within 10%) | | "
            + " | ".join(
                f"{'met' if v[k]['pass'] else 'not met'} (max dev {v[k]['max_abs_dev']:.2f}; "
                f"CIs cover 1: {'yes' if v[k]['ci_covers_1'] else 'no'})"
                for k in names
            )
            + " |\n"
        )
    return "\n".join(out)


def _row_cos(rows: list[dict], ckpt: str, name: str, n: int):
    r = [x for x in rows if x["checkpoint"] == ckpt and x["estimator"] == name and x["N"] == n]
    return r[0]["cos_ref"] if r else None


def ppo_step_table(summary: dict, rows: list[dict]) -> str:
    """E5b: cosine of PPO's full update to g_ref per rollout size, with comparisons."""
    lines = [
        "| checkpoint (mean length) | N episodes | E5b cos to g_ref [95% CI] | pairwise cos "
        "between seeds | cos to PPO's own GAE target | E3-Vagent cos to g_ref (same N) |",
        "|---|---|---|---|---|---|",
    ]
    for c in _with(summary, "ppo_step"):
        note = "" if signal_ok(c) else ", g_ref is noise"
        for r in c["ppo_step"]:
            lines.append(
                f"| {c['name']} ({c['mean_length']:.0f}{note}) | {r['N']} "
                f"| {_fmt(r['cos_ref'], '.2f')} "
                f"[{_fmt(r['cos_ref_lo'], '.2f')}, {_fmt(r['cos_ref_hi'], '.2f')}] "
                f"| {_fmt(r['pairwise_cos'], '.2f')} | {_fmt(r.get('cos_own'), '.2f')} "
                f"| {_fmt(_row_cos(rows, c['name'], 'E3_Vagent', r['N']), '.2f')} |"
            )
    return "\n".join(lines) + "\n"


def _gae_cell(g: dict, a: int, b: int) -> str:
    return (
        f"{_fmt(g['rel_bias_sq'][a][b], '.2g')} / {_fmt(g['rel_var_N'][a][b], '.2g')} "
        f"/ {_fmt(g['rel_mse_N'][a][b], '.2g')}"
    )


def _gae_find(g: dict, gamma: float, lam: float) -> str:
    if gamma in g["gammas"] and lam in g["lambdas"]:
        return _gae_cell(g, g["gammas"].index(gamma), g["lambdas"].index(lam))
    return "–"


def gae_map_table(summary: dict) -> str:
    """Per checkpoint: the (γ, λ) with the smallest MSE and the λ = 1, γ = 1 cell."""
    lines = [
        "| checkpoint | N (pairs) | best (γ, λ) by MSE | its bias² / var / MSE | "
        "γ = 1, λ = 1: bias² / var / MSE | PPO (0.99, 0.95): bias² / var / MSE |",
        "|---|---|---|---|---|---|",
    ]
    for c in _with(summary, "gae_map"):
        g = c["gae_map"]
        if not signal_ok(c):
            lines.append(
                f"| {c['name']} | {g['N']} ({g['pairs']}) | – (‖g_ref‖² is within noise: "
                "saturated policy) | – | – | – |"
            )
            continue
        mse = np.array(g["rel_mse_N"], float)
        i, j = np.unravel_index(np.nanargmin(mse), mse.shape)

        lines.append(
            f"| {c['name']} | {g['N']} ({g['pairs']}) | ({g['gammas'][i]:g}, {g['lambdas'][j]:g}) "
            f"| {_gae_cell(g, i, j)} | {_gae_find(g, 1.0, 1.0)} | {_gae_find(g, 0.99, 0.95)} |"
        )
    return "\n".join(lines) + "\n"


def full_markdown(summary: dict, rows: list[dict]) -> str:
    """Every part's table, each under its heading (parts that did not run are left out)."""
    out = []
    if _with(summary, "estimators"):
        out += ["## Estimators\n", markdown_table(summary)]
    if _with(summary, "decomposition"):
        out += ["## Tucker-style decomposition (per state-action sample)\n"]
        out += [decomposition_table(summary)]
    if _with(summary, "law"):
        out += ["## R4: N·tr Σ_N / tr Σ₁ on disjoint batches\n", law_table(summary)]
    if _with(summary, "ppo_step"):
        out += ["## E5b: PPO's full update vs g_ref\n", ppo_step_table(summary, rows)]
    if _with(summary, "gae_map"):
        out += ["## GAE (γ, λ) map (relative to ‖g_ref‖²)\n", gae_map_table(summary)]
    return "\n".join(out)


# --- the other parts: figures ---------------------------------------------------------


def part_figures(rows: list[dict], summary: dict) -> dict:
    """``{file stem: Figure}`` for the decomposition, R4, E5b and the GAE map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    figs = {}
    cks = _with(summary, "decomposition")
    if cks:
        keys = [
            ("state", "Σ_s states"),
            ("trajectory", "Σ_τ trajectory"),
            ("action/none", "Σ_a, no baseline"),
            ("action/V_agent", "Σ_a, V_φ"),
            ("action/V_star", "Σ_a, V*"),
        ]
        fig, ax = plt.subplots(figsize=(9, 3.8))
        width = 0.8 / len(keys)
        x = np.arange(len(cks))
        for j, (k, label) in enumerate(keys):
            tot = np.array([c["decomposition"]["total/none"]["value"] for c in cks])
            v = np.array([c["decomposition"][k]["value"] for c in cks]) / tot
            se = np.array([c["decomposition"][k]["se"] for c in cks]) / tot
            ax.bar(x + j * width, v, width, yerr=2 * se, capsize=2, label=label, color=f"C{j}")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xticks(
            x + 0.4 - width / 2,
            [
                f"{c['name']}\n(len {c['mean_length']:.0f}, K={c['decomposition']['num_states']})"
                for c in cks
            ],
            fontsize=8,
        )
        ax.set_ylabel("share of tr Cov ĝ₁ without baseline")
        ax.set_title(
            "Tucker-style decomposition of the single-pair T1 estimator (±2 SE); "
            "total = Σ_s + Σ_τ + Σ_a(b)",
            fontsize=9,
        )
        ax.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.2))
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        figs["variance_decomposition"] = fig

    cks = _with(summary, "law")
    if cks:
        fig, axes = plt.subplots(
            1, len(cks), figsize=(3.2 * len(cks), 3.4), sharey=True, squeeze=False
        )
        for ax, c in zip(axes[0], cks, strict=True):
            rows_c = c["law"]["rows"]
            names = list(dict.fromkeys(r["estimator"] for r in rows_c))
            for j, name in enumerate(names):
                sel = sorted((r for r in rows_c if r["estimator"] == name), key=lambda r: r["N"])
                n = np.array([r["N"] for r in sel], float) * (1 + 0.06 * (j - 1.5))
                y = np.array([r["ratio"] for r in sel])
                err = [
                    y - np.array([r["ratio_lo"] for r in sel]),
                    np.array([r["ratio_hi"] for r in sel]) - y,
                ]
                ax.errorbar(
                    n,
                    y,
                    err,
                    fmt="o-",
                    ms=3,
                    lw=1,
                    capsize=2,
                    color=COLORS.get(name, f"C{j}"),
                    label=name,
                )
            ax.axhspan(0.9, 1.1, color="grey", alpha=0.15, lw=0)
            ax.axhline(1.0, color="k", lw=0.5)
            ax.set_xscale("log", base=2)
            ax.set_xlabel("batch size N (trajectories)")
            ax.set_title(f"{c['name']} (pool {c['law']['pool']})", fontsize=9)
            ax.grid(alpha=0.3)
        axes[0, 0].set_ylabel("N·tr Σ_N / tr Σ₁ (95% CI)")
        axes[0, 0].legend(fontsize=6)
        fig.suptitle("R4: the 1/N law on disjoint batches (band: ±10%)", fontsize=9)
        fig.tight_layout()
        figs["variance_law"] = fig

    cks = _with(summary, "ppo_step")
    if cks:
        fig, axes = plt.subplots(
            1, len(cks), figsize=(3.2 * len(cks), 3.4), sharey=True, squeeze=False
        )
        for ax, c in zip(axes[0], cks, strict=True):
            pr = c["ppo_step"]
            n = np.array([r["N"] for r in pr], float)
            y = np.array([r["cos_ref"] for r in pr])
            err = [
                y - np.array([r["cos_ref_lo"] for r in pr]),
                np.array([r["cos_ref_hi"] for r in pr]) - y,
            ]
            ax.errorbar(n, y, err, fmt="o-", ms=3, capsize=2, color="k", label="E5b: PPO update Δθ")
            ax.plot(
                n,
                [r.get("cos_own", np.nan) for r in pr],
                "s:",
                ms=3,
                color="grey",
                label="E5b Δθ vs PPO's own GAE target",
            )
            for name in ("E3_Vagent", "E4_gae_g0.99_l0.95"):
                pts = [(r["N"], _row_cos(rows, c["name"], name, r["N"])) for r in pr]
                pts = [(a, b) for a, b in pts if b is not None]
                if pts:
                    a, b = zip(*pts, strict=True)
                    ax.plot(a, b, "o--", ms=3, lw=1, color=COLORS.get(name), label=f"{name} ĝ")
            ax.set_xscale("log", base=2)
            ax.set_ylim(-0.3, 1.02)
            ax.axhline(0, color="k", lw=0.5)
            ax.set_xlabel("rollout size N (complete episodes)")
            noise = "" if signal_ok(c) else "; g_ref is noise"
            ax.set_title(f"{c['name']} (mean len {c['mean_length']:.0f}{noise})", fontsize=9)
            ax.grid(alpha=0.3)
        axes[0, 0].set_ylabel("cosine to g_ref (T1)")
        axes[0, 0].legend(fontsize=6)
        fig.suptitle(
            f"E5b: PPO's full update (epochs × minibatches, Adam), {pr[0]['seeds']} seeds "
            "per N (95% CI)",
            fontsize=9,
        )
        fig.tight_layout()
        figs["variance_ppo_step"] = fig

    cks = [c for c in _with(summary, "gae_map") if signal_ok(c)]
    if cks:
        panels = (
            ("rel_bias_sq", "bias² vs T1"),
            ("rel_var_N", "variance tr Σ₁/N"),
            ("rel_mse_N", "MSE = bias² + var"),
        )
        fig, axes = plt.subplots(len(cks), 3, figsize=(12, 2.9 * len(cks)), squeeze=False)
        for i, c in enumerate(cks):
            g = c["gae_map"]
            for j, (k, title) in enumerate(panels):
                ax = axes[i, j]
                z = np.clip(np.array(g[k], float), 1e-4, None)
                im = ax.imshow(
                    z,
                    norm=LogNorm(1e-3, max(z.max(), 1.0)),
                    cmap="viridis",
                    aspect="auto",
                    origin="lower",
                )
                for a in range(z.shape[0]):
                    for b in range(z.shape[1]):
                        ax.text(
                            b,
                            a,
                            f"{g[k][a][b]:.2g}",
                            ha="center",
                            va="center",
                            fontsize=6,
                            color="w" if z[a, b] < 0.1 else "k",
                        )
                ax.set_xticks(
                    range(len(g["lambdas"])), [f"{v:g}" for v in g["lambdas"]], fontsize=7
                )
                ax.set_yticks(range(len(g["gammas"])), [f"{v:g}" for v in g["gammas"]], fontsize=7)
                ax.set_xlabel("λ", fontsize=8)
                if j == 0:
                    ax.set_ylabel(f"{c['name']}\nγ", fontsize=8)
                ax.set_title(f"{title} (N={g['N']}, ~{g['pairs']} pairs)", fontsize=8)
                fig.colorbar(im, ax=ax, fraction=0.046)
        fig.suptitle(
            "GAE(γ, λ) with the checkpoint critic, relative to ‖g_ref‖² (T1); "
            "bias² debiased for noise (≤ 0 shown as 1e-4)",
            fontsize=9,
        )
        fig.tight_layout()
        figs["variance_gae_map"] = fig
    return figs
