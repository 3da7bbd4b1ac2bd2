"""The critical batch size, in one place.

Definition 1 of Zhang et al. 2024 ("How Does Critical Batch Size Scale in Pre-training?"): the
CBS is the largest B >= B_ref with S(B) <= (1 + eps) S(B_ref) B_ref / B, eps = 0.2 ("20%
overhead over linear scaling"), S(B_ref) the fitted value. For the hyperbola
S = S_min (1 + B_noise / B) the condition reads B + B_noise <= (1 + eps)(B_ref + B_noise), so
B* = (1 + eps) B_ref + eps B_noise. For S = S_min (1 + (B_noise / B)^alpha) it is solved
numerically: g(B) = B (1 + (B_noise / B)^alpha) is convex for alpha >= 1 and increasing for
alpha <= 1, g(B_ref) < rhs and g(rhs) > rhs with rhs = (1 + eps) g(B_ref), so exactly one
crossing lies in [B_ref, rhs] and bisection in log B finds it.

McCandlish et al. 2018's B_crit = B_noise is a different quantity (the batch at which steps are
twice S_min: 100% overhead against the B -> 0 asymptote). It is reported beside B*, never as it.
"""

from __future__ import annotations

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
