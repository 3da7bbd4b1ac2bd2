"""Two-panel S(B) figures for a series of groups (Zhang et al. 2024, Fig. 1 top row layout):
raw steps to target and steps normalised by the fitted S(B_ref), for groups that vary in one
variable (data size at one model size, or model size at one data size)."""

from __future__ import annotations

from scaling.plots import FigureResult, Skip, curves, save_figure, sources, style, write_caption

MIN_GROUPS = 2


def make_series(name, title, runs_dir, fits_dir, out_dir, sweep, select, vary: str, what: str):
    """``select(groups)`` picks the series; ``vary`` is "tokens" or "params" (the legend's variable)."""
    def need(s):
        groups = select(sources.steps_table(s).groups)
        if len(groups) < MIN_GROUPS:
            return f"{len(groups)} (N, D) group(s) in such a series, {MIN_GROUPS} needed"
        return sources.keys(groups)

    sweep_obj, data = sources.pick(runs_dir, sweep, need, what)
    if sweep_obj is None:
        return Skip(name, data)
    result, groups = sources.cbs_groups(sweep_obj, fits_dir, data)
    plt = style.pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(style.FIGURE_WIDTH, style.PANEL_HEIGHT + 0.4))
    raw = curves.steps_panel(a, sweep_obj, groups, vary=vary)
    norm = curves.steps_panel(b, sweep_obj, groups, normalised=True)
    fixed = (sweep_obj.size_label(groups[0].params) if vary == "tokens"
             else sweep_obj.data_label(groups[0].tokens))
    a.set_title(f"{fixed}; S(B)")
    b.set_title("normalised by the fitted S(B_ref)")
    fig.suptitle(f"{title} -- {sweep_obj.name}" + (" (synthetic NQM)" if sweep_obj.synthetic else ""),
                 fontsize=10)
    style.legend_below(fig, *curves.legend_entries(a, raw))
    files = save_figure(fig, out_dir, name)
    varying = "data sizes" if vary == "tokens" else "model sizes"
    cap = write_caption(out_dir, name, f"{title} (layout of Zhang et al. 2024, Fig. 1 top row)", [
        f"Data: {sweep_obj.describe()}.",
        f"One curve per {varying[:-1]} at {fixed}: circles are the measured steps to each group's "
        "target loss L* (minimum over the learning-rate grid), solid lines the fitted step model "
        "S(B) = S_min (1 + B_noise / B), dotted lines ideal linear scaling through the fitted "
        f"S(B_ref), stars the Definition-1 CBS ({100 * result.overhead:g}% overhead over linear scaling). "
        "Right: each curve divided by its fitted S(B_ref), so that every ideal line is B_ref / B.",
    ])
    return FigureResult(name, sweep_obj.name, tuple(files) + (cap,), {"curves": raw, "normalised": norm})
