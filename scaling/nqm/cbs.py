"""Critical batch size read directly off an exact S(B) curve (no fitted step model).

Definition 1 of Zhang et al. 2024 ("How Does Critical Batch Size Scale in Pre-training?"):
the CBS is the largest B >= B_ref with S(B) <= (1 + eps) S(B_ref) B_ref / B, eps = 0.2
("20% overhead over linear scaling"). Equivalently the samples B S(B) to reach the target stay
within (1 + eps) of the reference's. On a grid of batch sizes we take the largest B that
satisfies it and interpolate the crossing linearly in log B towards the next grid point. The
analysis module instead fits S(B) = S_min (1 + B_noise / B) (McCandlish et al. 2018) and uses
its closed form; on the NQM both are available, which is how the testbed checks the fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

DEFAULT_OVERHEAD = 0.2  # Zhang et al. 2024, Definition 1


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
