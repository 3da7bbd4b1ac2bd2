"""Two groups' CBS compared: their ratio with a bootstrap interval.

The groups are measured by separate runs (two schedules, two momenta, a width- and a
depth-scaled model), so their bootstrap distributions are independent and pairing the draws of
one with a random permutation of the other's samples the ratio's distribution (Efron &
Tibshirani 1993, ch. 8, two-sample problems). The permutation matters: every group is
bootstrapped from the same seed, so draw i of two groups resampled the same positions. The interval is the expanded percentile interval of ``scaling.analysis.bootstrap``
with the smaller of the two groups' residual degrees of freedom.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.analysis.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_SEED, percentile_interval
from scaling.analysis.cbs import GroupCBS
from scaling.errors import ScalingError


@dataclass(frozen=True)
class Ratio:
    """CBS of ``a`` over CBS of ``b``."""

    a: str
    b: str
    ratio: float
    ci: tuple
    confidence: float

    @property
    def includes_one(self) -> bool:
        return self.ci[0] <= 1.0 <= self.ci[1]

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "ratio": self.ratio, "ci": list(self.ci), "confidence": self.confidence,
                "includes_one": self.includes_one}


def cbs_ratio(a: GroupCBS, b: GroupCBS, *, a_name: str = "", b_name: str = "",
              confidence: float = DEFAULT_CONFIDENCE, quantity: str = "cbs", seed: int = DEFAULT_SEED) -> Ratio:
    """``a.cbs / b.cbs`` with the percentile interval of the ratio of their bootstrap draws."""
    da, db = (np.asarray(g.draws.get(quantity, ()), float) for g in (a, b))
    if da.size == 0 or db.size == 0:
        raise ScalingError(f"no bootstrap draws of {quantity} to compare (the groups were fitted without them)")
    n = min(da.size, db.size)
    db = np.random.default_rng(seed).permutation(db)[:n]
    dfs = [d for d in (a.df, b.df) if d is not None]
    lo, hi = percentile_interval(da[:n] / db, confidence, df=min(dfs) if dfs else None)
    name = lambda g, given: given or f"params={g.params:.6g} tokens={g.tokens:.6g}"  # noqa: E731
    return Ratio(a=name(a, a_name), b=name(b, b_name), ratio=float(getattr(a, quantity) / getattr(b, quantity)),
                 ci=(float(lo), float(hi)), confidence=confidence)
