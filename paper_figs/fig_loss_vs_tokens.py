"""Validation loss against tokens for each batch size, with the target loss and the crossings.

For one (N, D) group (the largest model at its Chinchilla data size), the evaluation curve of the
best-lr run at every batch size, read from its run directory (``scaling.rundir``); the
horizontal line is the group's target L* (Zhang et al. 2024, Definition 1) and the dots are the
interpolated target crossings, whose steps are the group's S(B) in the steps table.
"""

from __future__ import annotations

import math

import numpy as np

from scaling import rundir
from scaling.plots import FigureResult, Skip, save_figure, sources, style, write_caption
from scaling.sweep.export import reference_steps

NAME = "fig_loss_vs_tokens"
REL_TOL = 1e-9


def _close(a, b) -> bool:
    return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=REL_TOL)


def _with_reference_crossing(d, s, target):
    """A reference run (trained for D with no target: it set L*) with its own crossing of L*, the
    S(B_ref) of the steps table (``scaling.sweep.export.reference_steps``); else the summary as is."""
    if s.get("target_loss") is not None or target is None:
        return s
    return {**s, "target_loss": target, "steps_to_target": reference_steps(d, s, float(target))}


def _runs_for(sweep, g) -> dict:
    """batch size -> (run dir, summary) of the best-lr finished run reaching the group's target."""
    best = {}
    for i, b in enumerate(g.batch_sizes):
        for d in sweep.run_dirs:
            s = rundir.read_summary(d)
            if not s or s.get("status") != "done":
                continue
            if not (_close(s.get("params"), g.params) and _close(s.get("tokens"), g.tokens)
                    and _close(s.get("batch_size"), b)):
                continue
            if g.best_lr[i] is not None and not _close(s.get("lr"), g.best_lr[i]):
                continue
            s = _with_reference_crossing(d, s, g.target_loss)
            if s.get("steps_to_target") is None or not _close(s.get("target_loss"), g.target_loss):
                continue
            if b not in best or s["steps_to_target"] < best[b][1]["steps_to_target"]:
                best[b] = (d, s)
    return best


def _need(s):
    if not s.run_dirs:
        return "no run directories (only a steps table); the loss curves live in metrics.jsonl"
    groups = sources.chinchilla_groups(sources.steps_table(s).groups)
    g = groups[-1]
    if g.target_loss is None:
        return "the steps table has no target_loss column"
    runs = _runs_for(s, g)
    if len(runs) < 2:
        return f"{len(runs)} run directory(ies) match the group's best-lr runs, 2 needed"
    return g, runs


def make(runs_dir, fits_dir, out_dir, sweep=None):
    sweep_obj, data = sources.pick(runs_dir, sweep, _need, "run directories with evaluation curves")
    if sweep_obj is None:
        return Skip(NAME, data)
    g, runs = data
    plt = style.pyplot()
    from matplotlib.colors import LogNorm

    fig, ax = plt.subplots(figsize=(style.SINGLE_WIDTH + 1.0, style.PANEL_HEIGHT + 0.4))
    cmap = plt.get_cmap(style.SEQUENTIAL_CMAP)
    bs = sorted(runs)
    norm = LogNorm(min(bs) / 1.5, max(bs) * 1.5)
    curves = []
    seq = g.seq_len or 1.0
    tokens_word = "samples" if sweep_obj.synthetic else "tokens"
    for b in bs:
        d, s = runs[b]
        key = s.get("eval_metric") or "eval_loss"
        rows = [r for r in rundir.read_metrics(d) if r.get(key) is not None]
        steps = np.array([r["step"] for r in rows], float)
        tokens = np.array([r.get("tokens", r["step"] * b * seq) for r in rows], float)
        loss = np.array([r[key] for r in rows], float)
        keep = tokens > 0
        col = cmap(norm(b))
        ax.plot(tokens[keep], loss[keep], "-", color=col, lw=1.2)
        cross_tokens = s["steps_to_target"] * b * seq
        ax.plot([cross_tokens], [g.target_loss], "o", color=col, mec="black", mew=0.6, ms=5, zorder=5)
        curves.append({"batch_size": b, "lr": s.get("lr"), "run": d.name, "steps": steps, "tokens": tokens,
                       "loss": loss, "crossing_step": float(s["steps_to_target"]),
                       "crossing_tokens": float(cross_tokens), "metric": key})
    ax.axhline(g.target_loss, color="black", ls="--", lw=1.0)
    ax.set_xscale("log")
    style.log10_axis(ax, "x")
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter, LogLocator
    lo, hi = ax.get_ylim()
    if hi / lo < 10:  # within a decade there may be no power of 10 to label: label 2, 3, 4, ... too
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=tuple(range(1, 10))))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _p: ""))
    ax.set_xlabel(f"{tokens_word} processed (steps x B" + ("" if sweep_obj.synthetic else " x seq_len") + ")")
    metric = curves[0]["metric"]
    ax.set_ylabel(("expected loss" if sweep_obj.synthetic else "validation loss (nats)")
                  + (" (EWA weights)" if metric.endswith("ewa") else ""))
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    cb = fig.colorbar(sm, ax=ax, pad=0.02)
    cb.set_label(f"batch size B ({sweep_obj.batch_unit(g.seq_len)})")
    cb.set_ticks([b for b in bs])
    cb.set_ticklabels([style.power_of_two_label(b) if math.log2(b).is_integer() else f"{b:g}" for b in bs])
    cb.minorticks_off()
    from matplotlib.lines import Line2D
    ax.legend([Line2D([], [], color="black", ls="--"), Line2D([], [], marker="o", ls="", color="grey", mec="black")],
              [f"target L* = {g.target_loss:.4g}", "target crossing (interpolated)"], loc="upper right")
    ax.set_title(f"{sweep_obj.size_label(g.params)}, {sweep_obj.data_label(g.tokens)} -- {sweep_obj.name}"
                 + (" (synthetic NQM)" if sweep_obj.synthetic else ""))
    fig.tight_layout()
    files = save_figure(fig, out_dir, NAME)
    cap = write_caption(out_dir, NAME, "Loss against data processed, one curve per batch size", [
        f"Data: {sweep_obj.describe()}.",
        f"Group {sweep_obj.size_label(g.params)}, {sweep_obj.data_label(g.tokens)} (the largest model size at "
        "its data size closest to 20 tokens per parameter). Each curve is the evaluation loss "
        f"(`{metric}` in metrics.jsonl) of the run with the best learning rate at that batch size; runs "
        "stop at the first evaluation below the target, except at the reference batch, whose runs train "
        "for D and set it. Dashed: the target loss L* (Definition 1 of "
        "Zhang et al. 2024: the best final loss at the reference batch). Dots: the target crossings, "
        "interpolated linearly in step between the two evaluations that bracket L*; their steps are S(B). "
        "A curve that starts late comes from a run with sparse evaluations (`eval.sparse_every`): its "
        "loss was computed only where a crossing could be, near L*.",
    ])
    return FigureResult(NAME, sweep_obj.name, tuple(files) + (cap,),
                        {"params": g.params, "tokens": g.tokens, "target_loss": g.target_loss, "curves": curves})


if __name__ == "__main__":
    from scaling.plots.registry import script_main
    raise SystemExit(script_main(__file__))
