"""A whole batch-size x learning-rate sweep on the NQM from the exact recursion, in seconds.

The protocol is the CBS paper's (Zhang et al. 2024, Sec. 2 and Definition 1), applied to the
expected loss instead of a trained network:

1. target L*: train at the reference batch B_ref for a budget of D samples at every lr of
   the grid; L* is the best final loss;
2. S(B): at every B and lr, the first (interpolated, ``scaling.target.crossing_step``) step at
   which the loss reaches L*, on the same dyadic evaluation schedule a run directory records,
   capped at ``cap_factor`` x D samples; S(B) is the minimum over lrs;
3. CBS: Definition 1 on the S(B) curve (``scaling.analysis.definitions.cbs_from_curve``).

``schedule(...)`` is shared with the NQM workload so that the sweep's run directories and this
direct computation give identical S(B).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from scaling.analysis.definitions import DEFAULT_OVERHEAD, CurveCBS, cbs_from_curve
from scaling.nqm.problem import NQM, Optimizer
from scaling.nqm.recursion import eval_steps, expected_loss
from scaling.target import crossing_step

DEFAULT_PER_OCTAVE = 8  # evaluations per doubling of the step count (spacing <= 12.5%)
DEFAULT_CAP_FACTOR = 4.0  # runs chasing the target may use up to this many times D samples
DIVERGENCE_FACTOR = 10.0  # a loss above this multiple of the initial loss (or non-finite) diverged


def divergence_index(losses: Sequence[float]) -> int:
    """Index of the first eval whose loss is non-finite or > DIVERGENCE_FACTOR x the first; len if none."""
    losses = np.asarray(losses, dtype=np.float64)
    bad = ~(np.isfinite(losses) & (losses <= DIVERGENCE_FACTOR * losses[0]))
    return int(np.argmax(bad)) if bad.any() else len(losses)


def run_crossing(steps: Sequence[int], losses: Sequence[float], target: float) -> Optional[float]:
    """Interpolated first step at/below ``target`` before the run diverges (None: never)."""
    end = divergence_index(losses)
    return crossing_step(list(steps[:end]), list(losses[:end]), target)


def schedule(batch_size: int, budget: int, cap: Optional[int] = None,
             per_octave: int = DEFAULT_PER_OCTAVE) -> np.ndarray:
    """Eval steps of a run at ``batch_size``: dyadic up to cap // B, plus the budget's last step D // B."""
    cap = budget if cap is None else cap
    total = cap // batch_size
    steps = eval_steps(total, per_octave)
    budget_step = budget // batch_size
    if budget_step <= total and budget_step not in steps:
        steps = np.sort(np.append(steps, budget_step))
    return steps


@dataclass(frozen=True)
class ExactSweep:
    """S(B) over a grid: ``steps[b, l]`` is the crossing step at batch b and grid lr l (NaN: none).

    ``tuned_steps[b]`` / ``tuned_lr[b]`` are the best over the grid and any zoomed-in lrs
    (``refine`` passes); without refinement they are the grid minimum.
    """

    problem: NQM
    optimizer: Optimizer
    batch_sizes: np.ndarray
    lrs: np.ndarray
    budget: int
    reference_batch: int
    target: float
    steps: np.ndarray
    tuned_steps: np.ndarray
    tuned_lr: np.ndarray

    @property
    def steps_to_target(self) -> np.ndarray:
        """S(B): minimum over lrs (NaN where no lr reaches the target within the cap)."""
        return self.tuned_steps

    @property
    def best_lr(self) -> np.ndarray:
        return self.tuned_lr

    def cbs(self, overhead: float = DEFAULT_OVERHEAD) -> CurveCBS:
        return cbs_from_curve(self.batch_sizes, list(self.steps_to_target), self.reference_batch, overhead)

    def rows(self) -> list[dict]:
        """Steps-table rows (``scaling.analysis.steps_table`` columns): params = dim, tokens = D samples,
        seq_len 1."""
        out = []
        for b, s, lr in zip(self.batch_sizes, self.steps_to_target, self.best_lr):
            if math.isfinite(s):
                out.append({"params": self.problem.dim, "tokens": self.budget, "batch_size": int(b),
                            "steps": float(s), "seq_len": 1, "lr": float(lr), "seed": 0,
                            "target_loss": self.target, "status": "done"})
        return out


ZOOM_POINTS = 9  # lrs per refinement pass, log-spaced between the best grid lr's neighbours


def _tune(objective, lrs: np.ndarray, values: np.ndarray, passes: int) -> tuple[float, float]:
    """Minimise ``objective`` (array of lrs -> values, NaN: no value) over log lr.

    Starts from the grid ``lrs`` with its ``values``; each pass re-grids between the
    neighbours of the best lr so far (a bracketing zoom; the objective is unimodal in log lr
    on the NQM). Returns (best lr, best value); (NaN, NaN) when nothing has a value.
    """
    vals = np.where(np.isnan(values), np.inf, values)
    k = int(np.argmin(vals))
    if not np.isfinite(vals[k]):
        return math.nan, math.nan
    best_lr, best = float(lrs[k]), float(vals[k])
    lo, hi = lrs[max(k - 1, 0)], lrs[min(k + 1, len(lrs) - 1)]
    for _ in range(passes):
        grid = np.geomspace(lo, hi, ZOOM_POINTS)
        v = np.asarray(objective(grid), dtype=np.float64)
        v = np.where(np.isnan(v), np.inf, v)
        j = int(np.argmin(v))
        if v[j] < best:
            best_lr, best = float(grid[j]), float(v[j])
        j = int(np.argmin(np.abs(np.log(grid / best_lr))))
        lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, len(grid) - 1)]
    return best_lr, best


def reference_target(problem: NQM, optimizer: Optimizer, lrs: Sequence[float], budget: int,
                     reference_batch: int, refine: int = 0) -> float:
    """Definition-1 target: best final expected loss over ``lrs`` at B_ref after ``budget`` samples."""
    lrs = np.asarray(lrs, dtype=np.float64)

    def final_loss(lr):
        return expected_loss(problem, optimizer, lr, reference_batch, [budget // reference_batch])[..., -1]

    _, best = _tune(final_loss, lrs, final_loss(lrs), refine)
    if not math.isfinite(best):
        raise ValueError("every learning rate diverged at the reference batch size")
    return best


def exact_sweep(problem: NQM, optimizer: Optimizer, batch_sizes: Sequence[int], lrs: Sequence[float],
                budget: int, reference_batch: int, *, target: Optional[float] = None,
                cap_factor: float = DEFAULT_CAP_FACTOR, per_octave: int = DEFAULT_PER_OCTAVE,
                refine: int = 0) -> ExactSweep:
    """S(B) at every (B, lr) from the exact recursion; the target is Definition 1's unless given.

    ``refine`` > 0 zooms the lr in that many times per batch size (and for the target), which
    stands in for a tuned lr and removes the grid's quantisation from S(B) and the CBS.
    """
    lrs = np.asarray(sorted(lrs), dtype=np.float64)
    batch_sizes = np.asarray(sorted(batch_sizes), dtype=np.int64)
    if target is None:
        target = reference_target(problem, optimizer, lrs, budget, reference_batch, refine)
    cap = int(cap_factor * budget)
    steps = np.full((len(batch_sizes), len(lrs)), np.nan)
    tuned_steps = np.full(len(batch_sizes), np.nan)
    tuned_lr = np.full(len(batch_sizes), np.nan)
    for i, b in enumerate(batch_sizes):
        if b > cap:
            continue
        sched = schedule(int(b), budget, cap, per_octave)

        def crossings(lr_values, b=int(b), sched=sched):
            losses = expected_loss(problem, optimizer, lr_values, b, sched)
            out = [run_crossing(sched, row, target) for row in losses]
            return np.array([math.nan if s is None else s for s in out])

        steps[i] = crossings(lrs)
        tuned_lr[i], tuned_steps[i] = _tune(crossings, lrs, steps[i], refine)
    return ExactSweep(problem, optimizer, batch_sizes, lrs, budget, reference_batch, float(target), steps,
                       tuned_steps, tuned_lr)


def lr_grid(problem: NQM, optimizer: Optimizer, points_per_decade: int = 4, decades: float = 4.0) -> np.ndarray:
    """Log-spaced lrs from the stability limit 2 (1 + beta) / h_max^(1-q) down ``decades`` decades."""
    top = optimizer.max_stable_lr(problem) * 0.99
    n = int(round(points_per_decade * decades)) + 1
    return top * np.logspace(-decades, 0, n)
