"""CBS against model or data size with the fitted power law (Zhang et al. 2024, Fig. 1 bottom).

Measured points are the groups' Definition-1 CBS with their bootstrap intervals
(``critical_batch_sizes``); the law and its band come from the fit (``PowerLaw.value`` and the
percentile interval of ``PowerLaw.value_draws``, the same numbers ``scaling predict`` reports),
solid over the fitted range and dashed as a forecast beyond it; the leave-one-out check (the
law refitted without the largest scale, predicting it) is drawn as an open diamond.
"""

from __future__ import annotations

import numpy as np

from scaling.analysis.bootstrap import percentile_interval
from scaling.plots import style

LAW_POINTS = 60
FORECAST_FACTOR = 16.0      # the forecast is drawn to this factor beyond the largest fitted value
BAND_SEED = 0               # seed of the lack-of-fit scatter in the band (as ``predict``'s default)
BAND_ALPHA = 0.2
SYMBOL = {"params": "N", "tokens": "D"}


def law_curve(law, variable: str, lo: float, hi: float, fixed: dict = None) -> dict:
    """x, law value and interval over [lo, hi] (log-spaced), ``fixed`` values for other variables."""
    xs = np.geomspace(lo, hi, LAW_POINTS)
    y, ylo, yhi = [], [], []
    for x in xs:
        values = {**(fixed or {}), variable: float(x)}
        values = {v: values[v] for v in law.variables}
        y.append(law.value(values))
        a, b = percentile_interval(law.value_draws(values, np.random.default_rng(BAND_SEED)), law.confidence)
        ylo.append(float(a))
        yhi.append(float(b))
    return {"x": xs, "y": np.array(y), "lo": np.array(ylo), "hi": np.array(yhi)}


def cbs_law_panel(ax, sweep, groups, fit, variable: str, fixed: dict = None) -> dict:
    """Points, law (fitted range + forecast) and leave-one-out point for ``variable`` on ``ax``."""
    law = fit.cbs
    x = np.array([getattr(g, variable) for g in groups])
    y = np.array([g.cbs for g in groups])
    ci = np.array([g.cbs_ci for g in groups])
    used = np.array(["b_noise_at_bound" not in g.flags for g in groups])
    col = style.color(0)
    err = np.abs(ci.T - y)
    ax.errorbar(x[used], y[used], yerr=err[:, used], fmt="o", color=col, capsize=2.5,
                label=f"measured CBS, {100 * law.confidence:g}% interval")
    if (~used).any():
        ax.errorbar(x[~used], y[~used], yerr=err[:, ~used], fmt="o", mfc="white", color=col, capsize=2.5,
                    label="left out of the law (B_noise at its bound)")
    lo, hi = law.fitted_range[variable]
    fitted = law_curve(law, variable, lo, hi, fixed)
    forecast = law_curve(law, variable, hi, hi * FORECAST_FACTOR, fixed)
    exps = " ".join(f"{SYMBOL[v]}^{law.exponents[v]:.3f}" for v in law.variables)
    ax.plot(fitted["x"], fitted["y"], "-", color=style.color(1), label=f"fitted law: CBS ~ {exps}")
    ax.fill_between(fitted["x"], fitted["lo"], fitted["hi"], color=style.color(1), alpha=BAND_ALPHA, lw=0)
    ax.plot(forecast["x"], forecast["y"], "--", color=style.color(1), label="forecast beyond the data")
    ax.fill_between(forecast["x"], forecast["lo"], forecast["hi"], color=style.color(1), alpha=BAND_ALPHA / 2,
                    lw=0)
    held = []
    logo = fit.meta.get("leave_one_out") or {}
    if logo.get("done"):
        for h in logo["held_out"]:
            hx, hp, (hlo, hhi) = h[variable], h["predicted"], h["predicted_ci"]
            held.append({"x": hx, "predicted": hp, "predicted_ci": (hlo, hhi), "measured": h["measured"]})
            ax.errorbar([hx * 1.08], [hp], yerr=[[hp - hlo], [hhi - hp]], fmt="D", mfc="white",
                        color=style.color(2), capsize=2.5, ms=5,
                        label="leave-one-out: law without the largest scale predicts it")
    xs = np.concatenate([x, forecast["x"]])
    ys = np.concatenate([ci.ravel(), fitted["lo"], forecast["hi"], [h["predicted_ci"][0] for h in held] or [y.min()]])
    ax.set_xscale("log")
    style.log10_axis(ax, "x")
    ylo, yhi = style.padded_range(ys, 1.3)
    ax.set_ylim(ylo, yhi)
    style.log2_axis(ax, "y", ylo, yhi)
    seq = {g.seq_len for g in groups}
    ax.set_ylabel(f"critical batch size ({sweep.batch_unit(seq.pop() if len(seq) == 1 else None)})")
    ax.set_xlim(xs.min() / 1.5, xs.max() * 1.2)
    return {"x": x, "cbs": y, "cbs_ci": ci, "used": used, "law": fitted, "forecast": forecast,
            "held_out": held, "exponents": dict(law.exponents), "prefactor": law.c, "pivot": dict(law.pivot)}
