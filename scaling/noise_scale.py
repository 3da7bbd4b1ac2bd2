"""Per-run summaries of a logged gradient-noise-scale curve (host-side NumPy, no JAX).

The trainer (``scaling.lm``) logs B_simple = tr(Sigma) / |G|^2 (McCandlish et al. 2018, App. A;
estimators in ``scaling.lm.gns``) at its log steps; this module reduces one run's curve to the
numbers recorded in summary.json and the steps table (``summarize``).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np


def _finite_series(steps, values):
    s = np.asarray(steps, dtype=float)
    v = np.asarray([np.nan if x is None else x for x in values], dtype=float)
    if s.shape != v.shape:
        raise ValueError(f"steps and b_simple values differ in length: {s.shape} vs {v.shape}")
    keep = np.isfinite(s) & np.isfinite(v) & (v > 0)
    s, v = s[keep], v[keep]
    order = np.argsort(s, kind="stable")
    return s[order], v[order]


def _time_average(s, v, end) -> Optional[float]:
    """Average of the piecewise-linear curve v(s) over [s[0], end] (trapezoid rule in step)."""
    if len(s) == 0:
        return None
    if len(s) == 1 or end <= s[0]:
        return float(v[0])
    inside = s < end
    ss = np.append(s[inside], end)
    vv = np.append(v[inside], np.interp(end, s, v))
    return float(np.trapezoid(vv, ss) / (ss[-1] - ss[0]))


def summarize(steps: Sequence[float], b_simple_values: Sequence[Optional[float]],
              crossing_step: Optional[float], batch_size: Optional[float] = None) -> dict:
    """Summary statistics of one run's logged B_simple curve.

    - ``b_simple_at_target``: B_simple linearly interpolated in step at the target crossing
      (``scaling.target.crossing_step``); None when the run never crossed or the crossing lies
      outside the logged range.
    - ``b_simple_mean``: the average over training of the logged B_simple (itself the ratio of the
      averaged |G|^2 and tr(Sigma)), weighted uniformly in optimizer steps (trapezoid rule, so an
      uneven eval schedule does not bias it), from the first finite value to the crossing, or to the
      last logged step when there is no crossing.
    - ``b_simple_crit`` (only with ``batch_size``): the whole-run critical batch that the step
      model predicts when B_noise varies during training (McCandlish et al. 2018, App. D): with
      dS = (1 + B_noise/B) dS_min per step at batch B, a run's E_min/S_min is the average of
      B_noise weighted by dS_min, i.e. by 1 / (1 + B_simple/B) per step. Uses B_simple for B_noise.
    - ``b_simple_final``, ``gns_points``: the last finite value and how many values were used.

    Non-finite and non-positive values (EMA warm-up) are dropped.
    """
    s, v = _finite_series(steps, b_simple_values)
    out = {"b_simple_at_target": None, "b_simple_mean": None, "b_simple_crit": None,
           "b_simple_final": float(v[-1]) if len(v) else None, "gns_points": int(len(v))}
    if len(v) == 0:
        return out
    if crossing_step is not None and math.isfinite(crossing_step) and s[0] <= crossing_step <= s[-1]:
        out["b_simple_at_target"] = float(np.interp(crossing_step, s, v))
    end = s[-1] if crossing_step is None or not math.isfinite(crossing_step) else min(crossing_step, s[-1])
    out["b_simple_mean"] = _time_average(s, v, end)
    if batch_size is not None:
        w = 1.0 / (1.0 + v / float(batch_size))  # dS_min / dS
        num, den = _time_average(s, w * v, end), _time_average(s, w, end)
        out["b_simple_crit"] = float(num / den)
    return out
