"""One figure of CBS against model size or data size (see ``lawpanel``), with its caption."""

from __future__ import annotations

from scaling.plots import FigureResult, Skip, save_figure, sources, style, write_caption
from scaling.plots.lawpanel import FORECAST_FACTOR, cbs_law_panel

MIN_GROUPS = 3   # two law parameters; fewer than three groups leave no check of the fit


def make_law_figure(name, runs_dir, fits_dir, out_dir, sweep, variable: str, select, what: str):
    def need(s):
        groups = select(sources.steps_table(s).groups)
        n = len({getattr(g, variable) for g in groups})
        if n < MIN_GROUPS:
            return f"{n} distinct {variable} value(s) in such a series, {MIN_GROUPS} needed"
        return sources.keys(groups)

    sweep_obj, keys = sources.pick(runs_dir, sweep, need, what)
    if sweep_obj is None:
        return Skip(name, keys)
    result, groups = sources.cbs_groups(sweep_obj, fits_dir, keys)
    fit, fit_source = sources.law_for(sweep_obj, fits_dir, result, groups, variable)
    plt = style.pyplot()
    fig, ax = plt.subplots(figsize=(style.SINGLE_WIDTH + 0.6, style.PANEL_HEIGHT + 0.3))
    data = cbs_law_panel(ax, sweep_obj, groups, fit, variable)
    if variable == "params":
        ax.set_xlabel(sweep_obj.size_axis)
        where = "each model size at ~20 tokens per parameter" if not sweep_obj.synthetic else "one sample budget per dimension"
    else:
        ax.set_xlabel(sweep_obj.data_axis)
        where = sweep_obj.size_label(groups[0].params)
    ax.set_title(f"CBS vs {'model' if variable == 'params' else 'data'} size -- {sweep_obj.name}"
                 + (" (synthetic NQM)" if sweep_obj.synthetic else ""))
    handles, labels = ax.get_legend_handles_labels()
    style.legend_below(fig, handles, labels, ncol=2)
    files = save_figure(fig, out_dir, name)
    law = fit.cbs
    logo = fit.meta.get("leave_one_out") or {}
    cap = write_caption(out_dir, name, f"Critical batch size against {'model' if variable == 'params' else 'data'} "
                        "size (Zhang et al. 2024, Fig. 1 bottom row)", [
        f"Data: {sweep_obj.describe()}.",
        f"Groups: {where}. Circles: Definition-1 CBS per group ({100 * result.overhead:g}% overhead over "
        f"linear scaling, reference batch {', '.join(sorted({f'{g.reference_batch:g}' for g in groups}))}) "
        f"with {100 * law.confidence:g}% bootstrap intervals from `scaling cbs`.",
        f"Line: the power law fitted to these groups ({fit_source}); "
        f"CBS = {law.c:.4g} x ({variable} / {law.pivot[variable]:.4g})^{law.exponents[variable]:.3f}, "
        f"band: {100 * law.confidence:g}% bootstrap interval including the lack-of-fit scatter (as "
        f"`scaling predict`). Dashed: forecast up to {FORECAST_FACTOR:g}x beyond the largest fitted value.",
        ("Open diamond: the leave-one-out check -- the law refitted without the largest scale, "
         "predicting it (compare with the measured circle beside it)." if logo.get("done")
         else f"Leave-one-out check not drawn: {logo.get('reason', 'not available')}."),
    ])
    data["fit_source"] = fit_source
    return FigureResult(name, sweep_obj.name, tuple(files) + (cap,), data)
