"""Our fitted law next to the published ones (Zhang et al. 2024; Kaplan et al. 2020), same axes.

Left: Definition-1 CBS in tokens against model size N -- our law over the model sizes it was
fitted on, Zhang et al.'s Chinchilla-setting law B* = 93.20 (N / 1e6)^0.47 sequences of 512
tokens (x 512 -> tokens) over 85M-1.2B. Right: McCandlish's B_noise (Kaplan's B_crit is this
quantity, not Definition 1) in tokens against the target loss -- our groups at their L*, Kaplan's
B_crit(L) = 2.1e8 / L^(1/0.21) tokens over its loss range. Each curve only over its own domain.
"""

from __future__ import annotations

import numpy as np

from scaling.analysis.presets import get_preset
from scaling.plots import FigureResult, Skip, save_figure, sources, style, write_caption
from scaling.plots.lawpanel import law_curve

NAME = "fig_presets"
ZHANG, KAPLAN = "zhang2024-chinchilla", "kaplan2020"
PRESET_POINTS = 50
MIN_SIZES = 3
LOSS_TICKS = (0.5, 1, 1.5, 2, 3, 4, 5, 6, 8, 10)


def preset_curve(name: str) -> dict:
    """The preset over its domain, output converted to tokens (sequences x the law's seq_len)."""
    p = get_preset(name)
    x = np.geomspace(*p.domain, PRESET_POINTS)
    y = np.array([p.fn(v) for v in x], float)
    if p.output_unit == "sequences":
        y = y * p.seq_len
    return {"x": x, "tokens": y, "domain": tuple(p.domain), "source": p.source, "definition": p.definition}


def _need(s):
    if s.synthetic:
        return ("the published laws are for language models (tokens of text, loss in nats); this sweep is "
                "the synthetic NQM, whose params and loss have other units")
    groups = sources.chinchilla_groups(sources.steps_table(s).groups)
    if len(groups) < MIN_SIZES:
        return f"{len(groups)} model size(s), {MIN_SIZES} needed for a law against N"
    if any(g.seq_len is None for g in groups):
        return "the steps table has no seq_len column (needed to convert sequences to tokens)"
    return sources.keys(groups)


def make(runs_dir, fits_dir, out_dir, sweep=None):
    sweep_obj, keys = sources.pick(runs_dir, sweep, _need, "a language-model sweep with three or more model sizes")
    if sweep_obj is None:
        return Skip(NAME, keys)
    result, groups = sources.cbs_groups(sweep_obj, fits_dir, keys)
    fit, fit_source = sources.law_for(sweep_obj, fits_dir, result, groups, "params")
    seq = groups[0].seq_len
    plt = style.pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(style.FIGURE_WIDTH, style.PANEL_HEIGHT))
    # left: CBS (tokens) vs N
    ours = law_curve(fit.cbs, "params", *fit.cbs.fitted_range["params"])
    ours = {k: (v * seq if k in ("y", "lo", "hi") else v) for k, v in ours.items()}
    zhang = preset_curve(ZHANG)
    a.plot(ours["x"], ours["y"], "-", color=style.color(0), label=f"ours ({sweep_obj.name}), Def. 1")
    a.fill_between(ours["x"], ours["lo"], ours["hi"], color=style.color(0), alpha=0.2, lw=0)
    pts_n = np.array([g.params for g in groups])
    pts_cbs = np.array([g.cbs * seq for g in groups])
    a.plot(pts_n, pts_cbs, "o", color=style.color(0))
    a.plot(zhang["x"], zhang["tokens"], "-", color=style.color(1), label="Zhang et al. 2024, Def. 1")
    a.set_xscale("log")
    a.set_yscale("log", base=2)
    style.log10_axis(a, "x")
    a.set_xlabel("model size N (non-embedding parameters)")
    a.set_ylabel("critical batch size (tokens)")
    a.set_title("CBS (Definition 1) vs model size")
    a.legend(loc="upper left")
    # right: B_noise (tokens) vs loss
    kap = preset_curve(KAPLAN)
    losses = np.array([g.target_loss for g in groups], float)
    bn = np.array([g.b_noise * seq for g in groups])
    b.plot(losses, bn, "o", color=style.color(0), label=f"ours: B_noise at L* ({sweep_obj.name})")
    b.plot(kap["x"], kap["tokens"], "-", color=style.color(1), label="Kaplan et al. 2020 B_crit(L)")
    b.set_xscale("log")
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
    lo = min(losses.min(), kap["x"].min()) / 1.1
    hi = max(losses.max(), kap["x"].max()) * 1.1
    b.set_xlim(lo, hi)
    b.xaxis.set_major_locator(FixedLocator([v for v in LOSS_TICKS if lo <= v <= hi]))
    b.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    b.xaxis.set_minor_locator(NullLocator())
    b.set_yscale("log", base=2)
    b.set_xlabel("target loss L* (nats per token)")
    b.set_ylabel("B_noise = McCandlish B_crit (tokens)")
    b.set_title("B_noise vs loss")
    b.legend(loc="upper right")
    for ax in (a, b):
        lo, hi = ax.get_ylim()
        style.log2_axis(ax, "y", lo, hi)
    fig.suptitle("Our laws next to the published presets (each over its own domain)", fontsize=10)
    fig.tight_layout()
    files = save_figure(fig, out_dir, NAME)
    cap = write_caption(out_dir, NAME, "Our law next to the published presets", [
        f"Data: {sweep_obj.describe()}; law {fit_source}.",
        f"Left: Definition-1 CBS in tokens (sequences x {seq:g}) against N; ours over the model sizes it "
        f"was fitted on (band: bootstrap interval), Zhang et al. 2024 ({zhang['source']}) converted from "
        "sequences of 512 tokens, over the 85M-1.2B models it was fitted on. Tokenizers and data differ "
        "(theirs: C4 with the GPT-NeoX tokenizer), so only slopes compare directly.",
        "Right: McCandlish's B_noise (the quantity Kaplan et al. call B_crit; not Definition 1) in tokens "
        f"against the target loss; Kaplan et al. 2020 eq. 5.1 over losses {kap['domain'][0]:g}-{kap['domain'][1]:g} "
        "nats (WebText2, GPT-2 tokenizer): losses in other tokenizers are not the same scale.",
    ])
    return FigureResult(NAME, sweep_obj.name, tuple(files) + (cap,),
                        {"ours": ours, "points": {"params": pts_n, "cbs_tokens": pts_cbs},
                         "zhang": zhang, "kaplan": kap, "b_noise": {"loss": losses, "tokens": bn}})


if __name__ == "__main__":
    from scaling.plots.registry import script_main
    raise SystemExit(script_main(__file__))
