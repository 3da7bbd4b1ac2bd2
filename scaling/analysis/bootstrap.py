"""Bootstrap resamples of a group's log S(B) and percentile intervals.

Two schemes (Efron & Tibshirani 1993, ch. 9): where every batch size has replicate runs
(seeds) the runs are resampled within each batch size and recombined (geometric mean);
otherwise residuals of the fitted step model are resampled with replacement and added to the
fitted curve, inflated by sqrt(n / (n - p)) so that their spread is not biased low by the p
fitted parameters (Davison & Hinkley 1997, eq. 6.9); resampled seed means are inflated by
sqrt(k / (k - 1)) for the same reason.

With a handful of points the plain percentile interval undercovers (it uses normal rather than
t quantiles). Intervals are therefore "expanded percentile" intervals (Hesterberg 2015, "What
teachers should know about the bootstrap", Sec. 5.1): the tails are read at the normal
probability of the t quantile with the residual degrees of freedom, Phi(t_{df, 1 - a/2}).
"""

from __future__ import annotations

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 0


def tail_probability(confidence: float, df=None) -> float:
    """Lower tail probability of the (expanded, when ``df`` is given) percentile interval."""
    a = (1.0 - confidence) / 2.0
    if df is None or not np.isfinite(df):
        return a
    from scipy.special import ndtr, stdtrit

    return float(ndtr(-stdtrit(max(float(df), 1.0), 1.0 - a)))


def percentile_interval(draws, confidence: float = DEFAULT_CONFIDENCE, axis: int = 0, df=None):
    """Equal-tailed percentile interval [lo, hi] of bootstrap draws (NaNs ignored).

    ``df``: residual degrees of freedom for the expanded percentile interval (None: plain).
    """
    tail = 100.0 * tail_probability(confidence, df)
    lo, hi = np.nanpercentile(draws, [tail, 100.0 - tail], axis=axis)
    return lo, hi


def seed_resamples(replicates, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(R, n) log steps: replicate runs resampled within each batch size, geometric mean."""
    cols = []
    for reps in replicates:
        logs = np.log(np.asarray(reps, float))
        k = len(logs)
        idx = rng.integers(0, k, size=(n_resamples, k))
        inflate = np.sqrt(k / (k - 1)) if k > 1 else 1.0
        cols.append(logs.mean() + inflate * (logs[idx].mean(1) - logs.mean()))
    return np.stack(cols, 1)


def residual_resamples(fitted_log, residuals, n_params: int, n_resamples: int,
                       rng: np.random.Generator) -> np.ndarray:
    """(R, n) log steps: fitted curve plus residuals drawn with replacement, df-inflated."""
    residuals = np.asarray(residuals, float)
    n = len(residuals)
    inflate = np.sqrt(n / max(n - n_params, 1))
    centred = (residuals - residuals.mean()) * inflate
    idx = rng.integers(0, n, size=(n_resamples, n))
    return np.asarray(fitted_log, float)[None, :] + centred[idx]
