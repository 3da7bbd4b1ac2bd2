"""Learning-rate schedules compared: steps to target against batch size for constant+EWA, cosine, WSD.

Runs of one sweep are split by ``optim.schedule`` (and whether EWA weights are evaluated); each
split is turned into a steps table by ``scaling.analysis.steps_table`` and fitted by ``group_cbs``.
"""

from __future__ import annotations

from scaling.analysis import group_cbs
from scaling.plots import FigureResult, Skip, curves, save_figure, sources, style, write_caption

NAME = "fig_schedules"
MIN_SCHEDULES = 2


def schedule_label(config: dict):
    sched = sources._dig(config, "optim.schedule")
    if sched is None:
        return None
    ewa = sources._dig(config, "ewa.decays") or sources._dig(config, "ewa.half_lives_tokens")
    return f"{sched}+EWA" if ewa else str(sched)


def _need(s):
    if not s.run_dirs:
        return "no run directories"
    by = sources.runs_by(s, schedule_label)
    if len(by) < MIN_SCHEDULES:
        return f"runs with {len(by)} learning-rate schedule(s) (optim.schedule), {MIN_SCHEDULES} needed"
    out = {}
    for label, records in sorted(by.items()):
        groups = sources.groups_from_records(records)
        out[label] = sources.chinchilla_groups(groups)[-1]
    keys = {(g.params, g.tokens) for g in out.values()}
    if len(keys) != 1:
        return "the schedules were not run on a common (N, D) group"
    return out


def make(runs_dir, fits_dir, out_dir, sweep=None):
    sweep_obj, by = sources.pick(runs_dir, sweep, _need, "runs of two or more learning-rate schedules")
    if sweep_obj is None:
        return Skip(NAME, by)
    ref = sources.cbs_settings(sweep_obj, fits_dir).reference_batch
    labels = sorted(by)
    fitted = [group_cbs(by[k], reference_batch=ref) for k in labels]
    plt = style.pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(style.FIGURE_WIDTH, style.PANEL_HEIGHT))
    raw = curves.steps_panel(a, sweep_obj, fitted)
    norm = curves.steps_panel(b, sweep_obj, fitted, normalised=True)
    handles, names = curves.legend_entries(a, raw)
    names = [f"{labels[i]}: {n}" if i < len(labels) else n for i, n in enumerate(names)]
    g = fitted[0]
    fig.suptitle(f"LR schedules, {sweep_obj.size_label(g.params)}, {sweep_obj.data_label(g.tokens)} -- {sweep_obj.name}",
                 fontsize=10)
    style.legend_below(fig, handles, names)
    files = save_figure(fig, out_dir, NAME)
    cap = write_caption(out_dir, NAME, "Learning-rate schedules compared", [
        f"Data: {sweep_obj.describe()}.",
        "Steps to target against batch size per schedule (" + ", ".join(labels) + "), each the minimum over "
        "its learning-rate grid, with the fitted step model and the Definition-1 CBS (star).",
    ])
    return FigureResult(NAME, sweep_obj.name, tuple(files) + (cap,),
                        {"schedules": labels, "curves": raw, "normalised": norm})


if __name__ == "__main__":
    from scaling.plots.registry import script_main
    raise SystemExit(script_main(__file__))
