"""The gradient noise scale B_simple over training, and against the measured critical batch size.

Left: B_simple = tr(Sigma)/|G|^2 (McCandlish et al. 2018, App. A; ``scaling.lm.gns``) logged in
metrics.jsonl (``gns_b_simple``) against tokens, one curve per model size. Right: per (N, D) group,
the median B_simple at the target crossing of the group's runs at B_ref against the measured CBS
(Zhang et al. 2024, Definition 1) and B_noise of the step-model fit, with y = x
(``scaling.analysis.gns_compare``). Skips when no run of the sweep logged the noise scale.
"""

from __future__ import annotations

import math

import numpy as np

from scaling import rundir
from scaling.errors import ScalingError
from scaling.plots import FigureResult, Skip, save_figure, sources, style, write_caption

NAME = "fig_gns"
METRIC = "gns_b_simple"


def _curve(d, summary) -> dict:
    rows = [r for r in rundir.read_metrics(d) if r.get(METRIC) is not None and r.get("step") is not None]
    b, seq = float(summary.get("batch_size") or 1), float(summary.get("seq_len") or 1)
    tokens = np.array([r.get("tokens", r["step"] * b * seq) for r in rows], float)
    values = np.array([r[METRIC] for r in rows], float)
    keep = np.isfinite(values) & (values > 0) & (tokens > 0)
    return {"run": d.name, "params": float(summary.get("params") or 0), "batch_size": b, "lr": summary.get("lr"),
            "final_eval_loss": summary.get("final_eval_loss"), "tokens": tokens[keep], "b_simple": values[keep]}


def _need(s):
    """Per model size, the run with the longest logged B_simple curve (ties: the lower final loss)."""
    if not s.run_dirs:
        return "no run directories (only a steps table); B_simple lives in metrics.jsonl"
    best: dict = {}
    for d in s.run_dirs:
        summary = rundir.read_summary(d)
        if not summary or summary.get("b_simple_mean") is None:
            continue  # gns off (or no finite value): nothing to read
        c = _curve(d, summary)
        if len(c["tokens"]) == 0:
            continue
        loss = c["final_eval_loss"] if c["final_eval_loss"] is not None else math.inf
        rank = (-len(c["tokens"]), loss, c["run"])
        if c["params"] not in best or rank < best[c["params"]][0]:
            best[c["params"]] = (rank, c)
    if not best:
        return "no run logged the gradient noise scale (train with gns: true and microbatch_size < batch_size)"
    return [best[p][1] for p in sorted(best)]


def _comparison(s, fits_dir):
    """(compare_gns result, None) or (None, why the right panel is empty)."""
    from scaling.analysis.gns_compare import compare_gns
    from scaling.sweep.export import load_records

    try:
        result = sources.cbs_result(s, fits_dir)
        comparison = compare_gns(result, load_records(s.steps_csv or s.path))
    except ScalingError as e:
        return None, f"no CBS: {e}"
    if not comparison.groups:
        return None, "no group has both a CBS and B_simple"
    return comparison, None


def make(runs_dir, fits_dir, out_dir, sweep=None):
    sweep_obj, curves = sources.pick(runs_dir, sweep, _need, "runs that logged the gradient noise scale")
    if sweep_obj is None:
        return Skip(NAME, curves)
    comparison, why = _comparison(sweep_obj, fits_dir)
    plt = style.pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(style.FIGURE_WIDTH, style.PANEL_HEIGHT))
    for i, c in enumerate(curves):
        a.plot(c["tokens"], c["b_simple"], "-", color=style.color(i),
               label=f"{sweep_obj.size_label(c['params'])} (B = {c['batch_size']:g})")
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("tokens processed")
    a.set_ylabel("B_simple (sequences)")
    a.set_title("B_simple over training (EMA ratio, one run per model size)")
    a.legend(loc="best")
    points = {}
    if comparison is not None:
        gs = comparison.groups
        x_cbs, x_bn, y = [g.cbs for g in gs], [g.b_noise for g in gs], [g.b_simple for g in gs]
        b.plot(x_cbs, y, "o", color=style.color(0), mec="black", mew=0.5, label="vs measured CBS (Def. 1)")
        b.plot(x_bn, y, "s", color="none", mec=style.color(1), mew=1.0, label="vs fitted B_noise")
        lo, hi = min(x_cbs + x_bn + y) / 1.5, max(x_cbs + x_bn + y) * 1.5
        b.plot([lo, hi], [lo, hi], "--", color=style.IDEAL_COLOR, lw=1.0, label="y = x")
        b.set_xscale("log")
        b.set_yscale("log")
        b.legend(loc="upper left")
        points = {"params": [g.params for g in gs], "tokens": [g.tokens for g in gs], "cbs": x_cbs,
                  "b_noise": x_bn, "b_simple": y, "geo_mean_ratio_cbs": comparison.geo_mean_ratio_cbs,
                  "geo_mean_ratio_b_noise": comparison.geo_mean_ratio_b_noise,
                  "log_corr_cbs": comparison.log_corr_cbs, "log_corr_b_noise": comparison.log_corr_b_noise}
    else:
        b.text(0.5, 0.5, why, ha="center", va="center", transform=b.transAxes, wrap=True, fontsize=8)
    b.set_xlabel("measured critical batch size (sequences)")
    b.set_ylabel("B_simple at the target (sequences)")
    b.set_title("B_simple against the sweep, per (N, D) group")
    fig.suptitle(f"Gradient noise scale -- {sweep_obj.name}", fontsize=10)
    fig.tight_layout()
    files = save_figure(fig, out_dir, NAME)
    ratio = ""
    if comparison is not None:
        from scaling.analysis.report import fmt
        ratio = (f" Across {len(comparison.groups)} groups the geometric-mean B_simple/CBS is "
                 f"{fmt(comparison.geo_mean_ratio_cbs, 3)} and B_simple/B_noise "
                 f"{fmt(comparison.geo_mean_ratio_b_noise, 3)}.")
    cap = write_caption(out_dir, NAME, "Gradient noise scale B_simple (McCandlish et al. 2018)", [
        f"Data: {sweep_obj.describe()}.",
        "Left: B_simple = tr(Sigma)/|G|^2, from the microbatch and batch gradients of each step "
        "(McCandlish et al. 2018, App. A; raw gradients before clipping and before AdamW), |G|^2 and "
        "tr(Sigma) smoothed by separate EMAs (decay 0.99) and divided; `gns_b_simple` in metrics.jsonl. "
        "One run per model size: the one with the longest logged curve.",
        "Right: per (N, D) group, the median over the group's runs at B_ref of B_simple at the target "
        "crossing (all its runs when none at B_ref measured it), against the measured Definition-1 CBS "
        "(circles; Zhang et al. 2024) and the step-model B_noise (squares); dashed y = x."
        + (ratio if ratio else f" Empty: {why}."),
        "B_simple ignores the curvature and the Adam preconditioner, and is a point measurement where "
        "the CBS describes whole runs; Merrill et al. 2025 report that it can badly underestimate the "
        "measured CBS (docs/gns.md).",
    ])
    data = {"curves": [{k: v for k, v in c.items()} for c in curves], "comparison": points}
    return FigureResult(NAME, sweep_obj.name, tuple(files) + (cap,), data)


if __name__ == "__main__":
    from scaling.plots.registry import script_main
    raise SystemExit(script_main(__file__))
