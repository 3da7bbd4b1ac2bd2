"""The critical batch size, in one place.

Definition 1 of Zhang et al. 2024 ("How Does Critical Batch Size Scale in Pre-training?"): the
CBS is the largest B >= B_ref with S(B) <= (1 + eps) S(B_ref) B_ref / B, eps = 0.2 ("20%
overhead over linear scaling"), S(B_ref) the fitted value. For the hyperbola
S = S_min (1 + B_noise / B) the condition reads B + B_noise <= (1 + eps)(B_ref + B_noise), so
B* = (1 + eps) B_ref + eps B_noise. For S = S_min (1 + (B_noise / B)^alpha) it is solved
numerically: g(B) = B (1 + (B_noise / B)^alpha) is convex for alpha >= 1 and increasing for
alpha <= 1, g(B_ref) < rhs and g(rhs) > rhs with rhs = (1 + eps) g(B_ref), so exactly one
crossing lies in [B_ref, rhs] and bisection in log B finds it.

On a measured (or exactly computed) S(B) grid with no step model, ``cbs_from_curve`` reads
Definition 1 directly: equivalently the samples B S(B) to reach the target stay within
(1 + eps) of the reference's; the largest grid B that satisfies it is taken and the crossing is
interpolated linearly in log B towards the next grid point. The analysis reports it as the
empirical CBS beside the fitted one; the NQM testbed uses it on its exact S(B).

McCandlish et al. 2018's B_crit = B_noise is a different quantity (the batch at which steps are
twice S_min: 100% overhead against the B -> 0 asymptote). It is reported beside B*, never as it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

DEFAULT_OVERHEAD = 0.2          # Zhang et al. 2024, Definition 1
BISECTION_ITERATIONS = 100      # halves the log-B bracket to machine precision
CBS_DEFINITION = ("Zhang et al. 2024 Definition 1: largest B >= B_ref with "
                  "S(B) <= (1 + overhead) * S(B_ref) * B_ref / B, S the fitted step model")
B_CRIT_DEFINITION = "McCandlish et al. 2018: B_crit = B_noise (S(B_noise) = 2 S_min)"


def cbs_hyperbola(b_noise, reference_batch, overhead=DEFAULT_OVERHEAD):
    """Closed form B* = (1 + eps) B_ref + eps B_noise (Zhang et al. 2024, hyperbola)."""
    return (1.0 + overhead) * np.asarray(reference_batch, float) + overhead * np.asarray(b_noise, float)


def cbs_numeric(b_noise, alpha, reference_batch, overhead=DEFAULT_OVERHEAD):
    """Definition 1 for S = S_min (1 + (B_noise / B)^alpha) by bisection in log B (vectorised)."""
    b_noise, alpha, b_ref = np.broadcast_arrays(np.asarray(b_noise, float), np.asarray(alpha, float),
                                                np.asarray(reference_batch, float))
    log_bn = np.log(b_noise)

    def log_g(log_b):  # log(B (1 + (B_noise / B)^alpha))
        return log_b + np.logaddexp(0.0, alpha * (log_bn - log_b))

    log_rhs = np.log1p(overhead) + log_g(np.log(b_ref))
    lo, hi = np.log(b_ref), log_rhs.copy()
    for _ in range(BISECTION_ITERATIONS):
        mid = 0.5 * (lo + hi)
        ok = log_g(mid) <= log_rhs
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    return np.exp(lo)


def cbs_from_fit(b_noise, alpha, reference_batch, overhead=DEFAULT_OVERHEAD):
    """Definition-1 CBS: closed form where alpha == 1, bisection elsewhere."""
    alpha = np.asarray(alpha, float)
    if np.all(alpha == 1.0):
        return cbs_hyperbola(b_noise, reference_batch, overhead)
    return cbs_numeric(b_noise, alpha, reference_batch, overhead)


@dataclass(frozen=True)
class CurveCBS:
    """Definition-1 CBS from a curve, with the grid points that bracket it.

    ``lower`` is the largest grid B that satisfies the condition, ``upper`` the next grid B
    (inf when even the largest B satisfies it: the CBS is then only known to be >= ``lower``).
    """

    cbs: float
    lower: float
    upper: float

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.upper)


def cbs_from_curve(batch_sizes: Sequence[float], steps: Sequence[Optional[float]], reference_batch: float,
                   overhead: float = DEFAULT_OVERHEAD) -> CurveCBS:
    """Definition-1 CBS from S(B) on a grid (ascending B); ``None``/NaN/inf steps are censored.

    Raises ValueError when the reference batch is not on the grid or never reaches the target.
    """
    pairs = sorted(zip(map(float, batch_sizes), steps))
    bs = [b for b, _ in pairs]
    if float(reference_batch) not in bs:
        raise ValueError(f"reference batch {reference_batch} is not among the batch sizes {bs}")
    s_ref = dict(pairs)[float(reference_batch)]
    if s_ref is None or not math.isfinite(s_ref):
        raise ValueError(f"the reference batch {reference_batch} never reaches the target")
    bound = math.log((1.0 + overhead) * reference_batch * s_ref)

    def excess(b, s):  # log(B S(B)) - log((1 + eps) B_ref S_ref); > 0 fails the condition
        return math.inf if s is None or not math.isfinite(s) else math.log(b * s) - bound

    above = [(b, excess(b, s)) for b, s in pairs if b >= reference_batch]
    i = max(k for k, (_, f) in enumerate(above) if f <= 0)  # the reference itself satisfies it
    b_lo, f_lo = above[i]
    if i == len(above) - 1:
        return CurveCBS(b_lo, b_lo, math.inf)
    b_hi, f_hi = above[i + 1]
    if not math.isfinite(f_hi):  # censored just above: no value to interpolate towards
        return CurveCBS(b_lo, b_lo, b_hi)
    frac = -f_lo / (f_hi - f_lo)
    return CurveCBS(math.exp(math.log(b_lo) + frac * (math.log(b_hi) - math.log(b_lo))), b_lo, b_hi)
