"""Steps to target against batch size, one curve per model size at its Chinchilla data size.

Zhang et al. 2024, Fig. 1 (top row): left, S(B) with the fitted step model, the ideal linear-
scaling line through the fitted S(B_ref) and the Definition-1 CBS (star); right, the same
normalised by the fitted steps at the reference batch (every ideal line becomes B_ref / B).
"""

from __future__ import annotations

from scaling.plots import FigureResult, Skip, save_figure, write_caption
from scaling.plots import curves, sources, style

NAME = "fig_steps_vs_batch"


def _need(s):
    return sources.keys(sources.chinchilla_groups(sources.steps_table(s).groups))


def make(runs_dir, fits_dir, out_dir, sweep=None):
    sweep_obj, data = sources.pick(runs_dir, sweep, _need, "a steps table")
    if sweep_obj is None:
        return Skip(NAME, data)
    result, groups = sources.cbs_groups(sweep_obj, fits_dir, data)
    plt = style.pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(style.FIGURE_WIDTH, style.PANEL_HEIGHT))
    raw = curves.steps_panel(a, sweep_obj, groups)
    norm = curves.steps_panel(b, sweep_obj, groups, normalised=True)
    one = len({g.params for g in groups}) == 1
    a.set_title("one model size (the sweep has one)" if one else "model sizes at ~20 tokens per parameter")
    b.set_title("normalised by the fitted S(B_ref)")
    fig.suptitle(f"Steps to target vs batch size -- {sweep_obj.name}"
                 + (" (synthetic NQM)" if sweep_obj.synthetic else ""), fontsize=10)
    style.legend_below(fig, *curves.legend_entries(a, raw))
    files = save_figure(fig, out_dir, NAME)
    pct = f"{100 * result.confidence:g}%"
    cap = write_caption(out_dir, NAME, "Steps to target against batch size (Zhang et al. 2024, Fig. 1 top row)", [
        f"Data: {sweep_obj.describe()}.",
        "Circles: measured steps to the target loss L* (minimum over the learning-rate grid, target "
        "crossing interpolated between evaluations). Solid: the fitted step model "
        "S(B) = S_min (1 + B_noise / B) (McCandlish et al. 2018, least squares in log S). Dotted: "
        "ideal linear scaling S(B_ref) B_ref / B through the fitted S at the reference batch. "
        f"Star: the Definition-1 CBS (largest B with at most {100 * result.overhead:g}% overhead over "
        f"linear scaling; Zhang et al. 2024), {pct} bootstrap intervals in `scaling cbs`.",
        "Groups: for each model size, the data size closest to 20 tokens per parameter (Chinchilla)"
        + ("; for the NQM this ratio has no meaning and simply picks one sample budget." if sweep_obj.synthetic else ".")
        + " Right: the same divided by the fitted S(B_ref), so that every ideal line is B_ref / B.",
    ])
    return FigureResult(NAME, sweep_obj.name, tuple(files) + (cap,), {"curves": raw, "normalised": norm})


if __name__ == "__main__":
    from scaling.plots.registry import script_main
    raise SystemExit(script_main(__file__))
