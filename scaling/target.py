"""Steps to a target loss, read off an evaluation curve.

Zhang et al. 2024 ("How Does Critical Batch Size Scale in Pre-training?") read S(B) at the
first evaluation below the target; docs/design.md asks for linear interpolation in step between
the two evaluations that bracket the target instead, so the eval spacing does not quantise S.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence


def crossing_step(steps: Sequence[float], losses: Sequence[float], target: float) -> Optional[float]:
    """First step at which the (piecewise-linear) eval curve reaches ``target``.

    ``steps`` ascending, ``losses`` the eval losses there. Returns None when no evaluation
    reaches the target (the run is censored if it stopped at a cap). If the very first
    evaluation is already at or below the target, its step is returned.
    """
    prev_s, prev_l = None, None
    for s, l in zip(steps, losses):
        if l is None or not math.isfinite(l):
            prev_s, prev_l = None, None
            continue
        if l <= target:
            if prev_s is None or prev_l == l:
                return float(s)
            # linear in step between (prev_s, prev_l) above and (s, l) at/below target
            frac = (prev_l - target) / (prev_l - l)
            return float(prev_s + frac * (s - prev_s))
        prev_s, prev_l = s, l
    return None
