"""Width against depth scaling: CBS against model size for models grown in width vs in depth.

Runs of one sweep are split by how the model grows: a family at fixed ``model.n_layers``
(width-scaled) and one at fixed ``model.d_model`` (depth-scaled); each family's groups go
through ``scaling.analysis`` (steps table, Definition-1 CBS with intervals).
"""

from __future__ import annotations

import numpy as np

from scaling.analysis import group_cbs
from scaling.plots import FigureResult, Skip, save_figure, sources, style, write_caption

NAME = "fig_width_depth"
MIN_SIZES = 2


def _families(s):
    shapes = sources.runs_by(s, lambda c: (sources._dig(c, "model.d_model"), sources._dig(c, "model.n_layers"))
                             if sources._dig(c, "model.d_model") else None)
    if not shapes:
        return {}
    depth = {}
    width = {}
    for (d_model, n_layers), recs in shapes.items():
        width.setdefault(n_layers, []).extend(recs)    # fixed depth: width varies
        depth.setdefault(d_model, []).extend(recs)     # fixed width: depth varies
    fam = {}
    for name, by in (("width-scaled (fixed n_layers)", width), ("depth-scaled (fixed d_model)", depth)):
        best = max(by.values(), key=lambda r: len({x["params"] for x in r}))
        if len({x["params"] for x in best}) >= MIN_SIZES:
            fam[name] = best
    return fam


def _need(s):
    if not s.run_dirs or s.synthetic:
        return "no language-model run directories"
    fam = _families(s)
    if len(fam) < 2:
        return "runs that grow the model both in width and in depth (model.d_model, model.n_layers)"
    return fam


def make(runs_dir, fits_dir, out_dir, sweep=None):
    sweep_obj, fam = sources.pick(runs_dir, sweep, _need, "width- and depth-scaled model families")
    if sweep_obj is None:
        return Skip(NAME, fam + "; the EWA-decay comparison also waits for such runs")
    ref = sources.cbs_settings(sweep_obj, fits_dir).reference_batch
    plt = style.pyplot()
    fig, ax = plt.subplots(figsize=(style.SINGLE_WIDTH, style.PANEL_HEIGHT))
    data = {}
    for i, (name, recs) in enumerate(sorted(fam.items())):
        gs = [group_cbs(g, reference_batch=ref) for g in sources.chinchilla_groups(sources.groups_from_records(recs))]
        x = np.array([g.params for g in gs])
        y = np.array([g.cbs for g in gs])
        ci = np.array([g.cbs_ci for g in gs])
        ax.errorbar(x, y, yerr=np.abs(ci.T - y), fmt="o-", color=style.color(i), capsize=2.5, label=name)
        data[name] = {"params": x, "cbs": y, "cbs_ci": ci}
    ax.set_xscale("log")
    style.log10_axis(ax, "x")
    lo, hi = style.padded_range([v for d in data.values() for v in d["cbs_ci"].ravel()])
    style.log2_axis(ax, "y", lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel(sweep_obj.size_axis)
    ax.set_ylabel("critical batch size (sequences)")
    ax.legend()
    fig.tight_layout()
    files = save_figure(fig, out_dir, NAME)
    cap = write_caption(out_dir, NAME, "Width against depth scaling", [
        f"Data: {sweep_obj.describe()}.",
        "Definition-1 CBS with bootstrap intervals against N, for models grown in width and in depth.",
    ])
    return FigureResult(NAME, sweep_obj.name, tuple(files) + (cap,), data)


if __name__ == "__main__":
    from scaling.plots.registry import script_main
    raise SystemExit(script_main(__file__))
