"""Steps-to-target panels shared by the S(B) figures (Zhang et al. 2024, Fig. 1 top row).

Per (N, D) group: the measured S(B) (minimum over the tuning grid), the fitted step model
S(B) = S_min (1 + (B_noise / B)^alpha) (McCandlish et al. 2018), the ideal linear-scaling line
S(B_ref) B_ref / B through the fitted S(B_ref), and the Definition-1 CBS on the fitted curve --
all taken from a ``GroupCBS`` of ``scaling.analysis``, never recomputed here.
"""

from __future__ import annotations

import numpy as np

from scaling.analysis.stepmodel import steps_at
from scaling.plots import style

CURVE_POINTS = 200
CURVE_PAD = 1.5          # fitted curve drawn this factor beyond the measured batch sizes
CBS_MARKER = "*"
CBS_MARKER_SIZE = 11


def group_curves(g) -> dict:
    """The arrays one group contributes to an S(B) panel (raw and normalised)."""
    B = np.asarray(g.batch_sizes, float)
    S = np.asarray(g.steps, float)
    log_s, log_bn = np.log(g.s_min), np.log(g.b_noise)
    Bf = np.geomspace(B.min() / CURVE_PAD, B.max() * CURVE_PAD, CURVE_POINTS)
    Sf = steps_at(Bf, log_s, log_bn, g.alpha)
    s_ref = float(steps_at(g.reference_batch, log_s, log_bn, g.alpha))
    s_cbs = float(steps_at(g.cbs, log_s, log_bn, g.alpha))
    s0 = s_ref  # the fitted S(B_ref): every normalised ideal line is B_ref / B, where the CBS is read
    return {"params": g.params, "tokens": g.tokens, "target_loss": g.target_loss, "seq_len": g.seq_len,
            "batch_sizes": B, "steps": S, "fit_batch": Bf, "fit_steps": Sf,
            "ideal_steps": s_ref * g.reference_batch / Bf, "reference_batch": g.reference_batch,
            "cbs": g.cbs, "cbs_ci": tuple(g.cbs_ci), "cbs_steps": s_cbs, "s_min": g.s_min,
            "b_noise": g.b_noise, "alpha": g.alpha, "normaliser": s0,
            "steps_norm": S / s0, "fit_steps_norm": Sf / s0, "ideal_steps_norm": s_ref * g.reference_batch / Bf / s0,
            "cbs_steps_norm": s_cbs / s0}


def label(sweep, g, vary: str = "both") -> str:
    parts = []
    if vary in ("both", "params"):
        parts.append(sweep.size_label(g.params))
    if vary in ("both", "tokens"):
        parts.append(sweep.data_label(g.tokens))
    if g.target_loss is not None:
        parts.append(f"L* = {g.target_loss:.4g}")
    return ", ".join(parts)


def steps_panel(ax, sweep, groups, *, normalised: bool = False, vary: str = "both", colors=None) -> list:
    """Draw S(B) (or S(B) / fitted S(B_ref)) for ``groups`` (GroupCBS) on ``ax``; return the curves."""
    curves = []
    suffix = "_norm" if normalised else ""
    for i, g in enumerate(groups):
        c = group_curves(g)
        col = colors[i] if colors else style.color(i)
        ax.plot(c["batch_sizes"], c["steps" + suffix], "o", color=col, label=label(sweep, g, vary))
        ax.plot(c["fit_batch"], c["fit_steps" + suffix], "-", color=col, lw=1.2)
        ax.plot(c["fit_batch"], c["ideal_steps" + suffix], ":", color=col, lw=1.0, alpha=0.8)
        ax.plot([c["cbs"]], [c["cbs_steps" + suffix]], CBS_MARKER, color=col, ms=CBS_MARKER_SIZE,
                markeredgecolor="black", markeredgewidth=0.5, zorder=5)
        curves.append(c)
    lo = min(c["fit_batch"].min() for c in curves)
    hi = max(c["fit_batch"].max() for c in curves)
    ax.set_xlim(lo, hi)
    style.log2_axis(ax, "x", lo, hi)
    ax.set_yscale("log")
    seq = {c["seq_len"] for c in curves}
    ax.set_xlabel(f"batch size B ({sweep.batch_unit(seq.pop() if len(seq) == 1 else None)})")
    ax.set_ylabel("S(B) / fitted S(B_ref)" if normalised else "steps to target S(B)")
    return curves


def legend_entries(ax, curves_: list) -> tuple:
    """Handles and labels of the curves on ``ax`` plus one per line style (measured, fit, ideal, CBS)."""
    from matplotlib.lines import Line2D

    refs = {c["reference_batch"] for c in curves_}
    reference_batch = refs.pop() if len(refs) == 1 else None
    alphas = {c["alpha"] for c in curves_}
    handles, labels = ax.get_legend_handles_labels()
    k = "black"
    handles += [Line2D([], [], marker="o", ls="", color=k), Line2D([], [], ls="-", color=k),
                Line2D([], [], ls=":", color=k),
                Line2D([], [], marker=CBS_MARKER, ls="", color=k, ms=CBS_MARKER_SIZE * 0.8)]
    fit = r"fit $S_{min}(1 + B_{noise}/B)$" if alphas == {1.0} else r"fit $S_{min}(1 + (B_{noise}/B)^\alpha)$"
    labels += ["measured (best lr)", fit, "ideal linear scaling",
               "CBS (Def. 1" + (f", B_ref = {reference_batch:g})" if reference_batch else ")")]
    return handles, labels
