"""Loss-optimal batch size B_opt and learning rate lr_opt per (params, tokens) group.

From a loss grid (``lossgrid``): the final loss L of runs at several (B, lr). Near its minimum
the loss is a smooth bowl in (log B, log lr) (StepLaw, Li et al. 2025, arXiv:2503.04715: "the
hyperparameter landscape exhibits convexity with a broad optimum"), so B_opt and lr_opt are the
minimiser of the quadratic

    L = b0 + b1 x + b2 y + b3 x^2 + b4 x y + b5 y^2,   x = log B, y = log lr,

fitted by least squares to the cells whose loss lies within ``fit_window`` of the grid's minimum
(the window widens until it holds at least MIN_FIT_CELLS cells and three values of each
variable; with fewer the pairs bootstrap below gives intervals far wider than the estimate's
spread). The stationary point solves H (x, y) = -(b1, b2) with H = [[2 b3, b4], [b4, 2 b5]];
it is a minimum when H is positive definite. The grid argmin is reported beside it, never as it.

The near-optimal band is the set of configurations within ``band`` (default 0.25%, the
threshold of StepLaw's released fitting code, ``filter_threshold=0.0025``) of the minimum loss:
read off the data (the cells inside it) and off the fitted bowl (the ellipse
1/2 d^T H d <= band * L_opt, whose extent along x is sqrt(2 band L_opt (H^-1)_xx)).

Intervals are bootstrap percentile intervals (Efron & Tibshirani 1993): replicate seeds are
resampled within each cell where every fitted cell has two or more; otherwise the fitted cells
(runs) are resampled with replacement (the pairs bootstrap, ch. 9.5), each resample a weighted
least-squares fit, all solved at once. Tails use the expanded percentile interval (Hesterberg
2015) with the fit's residual degrees of freedom. The fitting window is held at the point
estimate's cells in every resample.

B is in sequences, as in the table; B_opt in tokens is B_opt x seq_len. This is the
loss-optimal batch size at fixed D, not the critical batch size (Zhang et al. 2024, Def. 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from scaling.analysis.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED, percentile_interval
from scaling.analysis.lossgrid import LossGrid, LossGroup
from scaling.errors import ScalingError

DEFAULT_BAND = 0.0025         # near-optimal: within 0.25% of the minimum loss (StepLaw's released code)
DEFAULT_FIT_WINDOW = 0.02     # the bowl is fitted to cells within 2% of the minimum loss ...
WINDOW_GROWTH = 2.0           # ... widened by this factor until it holds enough cells
MAX_WINDOW = 1.0              # never beyond twice the minimum loss
QUADRATIC_TERMS = 6
MIN_FIT_CELLS = 16            # the window grows to this many cells (10 residual degrees of freedom) ...
MIN_CELLS = QUADRATIC_TERMS + 1   # ... and a group needs at least this many
MIN_LEVELS = 3                # a parabola along each axis needs three distinct values
RANK_TOLERANCE = 1e-12        # a resample whose scaled normal matrix has a smaller determinant is dropped
MIN_VALID_FRACTION = 0.9      # resamples with a minimum; fewer makes the interval suspect
OPTIMUM_DEFINITION = ("loss-optimal (B, lr): minimiser of a quadratic in (log B, log lr) fitted to the "
                      "runs near the minimum final loss at fixed (params, tokens); not the CBS")


@dataclass(frozen=True)
class Bowl:
    """Minimum of fitted quadratics (vectorised over rows): location, loss, Hessian."""

    x: np.ndarray
    y: np.ndarray
    loss: np.ndarray
    hessian: np.ndarray      # (R, 2, 2)
    is_minimum: np.ndarray   # H positive definite


def design(x, y) -> np.ndarray:
    """Columns 1, x, y, x^2, x y, y^2 of the quadratic surface."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return np.column_stack([np.ones_like(x), x, y, x * x, x * y, y * y])


def bowl(beta) -> Bowl:
    """Stationary point of L = b . design(x, y): H (x, y) = -(b1, b2), H = [[2 b3, b4], [b4, 2 b5]]."""
    b = np.atleast_2d(np.asarray(beta, float))
    det = 4.0 * b[:, 3] * b[:, 5] - b[:, 4] ** 2
    is_min = (b[:, 3] > 0) & (det > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = -(2.0 * b[:, 5] * b[:, 1] - b[:, 4] * b[:, 2]) / det
        y = -(2.0 * b[:, 3] * b[:, 2] - b[:, 4] * b[:, 1]) / det
    loss = b[:, 0] + 0.5 * (b[:, 1] * x + b[:, 2] * y)
    H = np.stack([np.stack([2 * b[:, 3], b[:, 4]], -1), np.stack([b[:, 4], 2 * b[:, 5]], -1)], -2)
    return Bowl(x=x, y=y, loss=loss, hessian=H, is_minimum=is_min)


def weighted_quadratic(A: np.ndarray, L: np.ndarray, W: Optional[np.ndarray] = None) -> np.ndarray:
    """Least-squares coefficients (R, 6) for each row of L (R, n) (weights W (R, n) if given)."""
    L = np.atleast_2d(L)
    if W is None:
        return np.linalg.lstsq(A, L.T, rcond=None)[0].T
    AtWA = np.einsum("ni,rn,nj->rij", A, W, A)
    AtWL = np.einsum("ni,rn,rn->ri", A, W, L)
    d = np.sqrt(np.einsum("rii->ri", AtWA))
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = np.linalg.det(AtWA / (d[:, :, None] * d[:, None, :])) > RANK_TOLERANCE   # Hadamard ratio
    out = np.full((len(L), A.shape[1]), np.nan)
    if ok.any():
        out[ok] = np.linalg.solve(AtWA[ok], AtWL[ok][..., None])[..., 0]
    return out


def fit_window(group: LossGroup, window: float = DEFAULT_FIT_WINDOW) -> tuple:
    """Indices of the cells fitted and the window used: within ``window`` of the minimum loss,
    widened by WINDOW_GROWTH until MIN_FIT_CELLS cells and MIN_LEVELS values of B and of lr."""
    L = group.losses
    w = float(window)
    while True:
        idx = np.flatnonzero(L <= (1.0 + w) * L.min())
        if (len(idx) >= MIN_FIT_CELLS and len(np.unique(group.batch_sizes[idx])) >= MIN_LEVELS
                and len(np.unique(group.lrs[idx])) >= MIN_LEVELS) or w >= MAX_WINDOW:
            return idx, w
        w = min(w * WINDOW_GROWTH, MAX_WINDOW)


def band_extent(b: Bowl, band: float, centre: tuple) -> dict:
    """Fitted near-optimal band: the ellipse 1/2 d^T H d <= band * L_opt, its extent per axis."""
    if not b.is_minimum[0]:
        return {"batch_range": None, "lr_range": None}
    Hinv = np.linalg.inv(b.hessian[0])
    delta = 2.0 * band * float(b.loss[0])
    hx, hy = np.sqrt(delta * Hinv[0, 0]), np.sqrt(delta * Hinv[1, 1])
    x, y = float(b.x[0]) + centre[0], float(b.y[0]) + centre[1]
    return {"batch_range": [float(np.exp(x - hx)), float(np.exp(x + hx))],
            "lr_range": [float(np.exp(y - hy)), float(np.exp(y + hy))]}


@dataclass(frozen=True)
class GroupOptimum:
    """B_opt and lr_opt of one (params, tokens) group, with intervals, band and flags."""

    params: float
    tokens: float
    seq_len: Optional[float]
    b_opt: Optional[float]
    b_opt_ci: tuple
    b_opt_tokens: Optional[float]
    b_opt_tokens_ci: Optional[tuple]
    lr_opt: Optional[float]
    lr_opt_ci: tuple
    loss_opt: Optional[float]       # the fitted bowl's minimum
    loss_min: float                 # the smallest loss measured
    argmin_batch: float             # the grid cell with the smallest loss (for reference only)
    argmin_lr: float
    band: dict
    n_runs: int
    n_fit: int
    fit_window: float
    bootstrap: str                  # "seeds" or "runs"
    n_resamples: int
    n_valid: int                    # resamples whose fit has a minimum
    df: int
    rms_residual: float
    edge: bool
    flags: tuple
    warnings: tuple
    draws: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def usable(self) -> bool:
        """Fit for a law: a minimum inside the grid."""
        return self.b_opt is not None and not ({"b_opt_outside_grid", "lr_opt_outside_grid"} & set(self.flags))

    def to_dict(self) -> dict:
        keys = ("params", "tokens", "b_opt", "b_opt_ci", "b_opt_tokens", "b_opt_tokens_ci", "lr_opt", "lr_opt_ci",
                "edge", "seq_len", "loss_opt", "loss_min", "argmin_batch", "argmin_lr", "band", "n_runs", "n_fit",
                "fit_window", "bootstrap", "n_resamples", "n_valid", "df", "rms_residual", "flags", "warnings")
        d = {k: getattr(self, k) for k in keys}
        d["definition"] = OPTIMUM_DEFINITION
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


@dataclass(frozen=True)
class OptimumResult:
    groups: tuple
    left_out: tuple
    sha256: str
    source: str
    band: float
    confidence: float
    warnings: tuple

    def to_dict(self) -> dict:
        return {"groups": [g.to_dict() for g in self.groups], "left_out": [e.describe() for e in self.left_out],
                "band": self.band, "confidence": self.confidence, "definition": OPTIMUM_DEFINITION,
                "input_sha256": self.sha256, "warnings": list(self.warnings)}


def _interval(draws, confidence, df):
    lo, hi = percentile_interval(draws, confidence, df=df)
    return (float(lo), float(hi))


def _resample(group: LossGroup, idx, A, n_resamples, rng):
    """Bootstrap coefficient draws (R, 6): seeds within cells, else the fitted runs (pairs)."""
    reps = [np.asarray(group.replicates[i], float) for i in idx]
    if all(len(r) >= 2 for r in reps):
        L = np.stack([r[rng.integers(0, len(r), size=(n_resamples, len(r)))].mean(1) for r in reps], 1)
        return "seeds", weighted_quadratic(A, L)
    counts = rng.multinomial(len(idx), np.full(len(idx), 1.0 / len(idx)), size=n_resamples).astype(float)
    L = np.broadcast_to(group.losses[idx], counts.shape)
    return "runs", weighted_quadratic(A, L, counts)


def _check_levels(group: LossGroup) -> None:
    nb, nl = len(np.unique(group.batch_sizes)), len(np.unique(group.lrs))
    if nb < MIN_LEVELS or nl < MIN_LEVELS:
        raise ScalingError(f"group {group.name} has {nb} batch size(s) and {nl} learning rate(s) with a "
                           f"usable loss; B_opt and lr_opt need at least {MIN_LEVELS} of each")
    if len(group.losses) < MIN_CELLS:
        raise ScalingError(f"group {group.name} has {len(group.losses)} (batch size, lr) cells; a quadratic "
                           f"bowl needs at least {MIN_CELLS}")


def group_optimum(group: LossGroup, *, band: float = DEFAULT_BAND, window: float = DEFAULT_FIT_WINDOW,
                  n_resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
                  keep_edge: bool = False, rng: Optional[np.random.Generator] = None) -> GroupOptimum:
    """B_opt, lr_opt of one group from a quadratic bowl in (log B, log lr), with bootstrap intervals.

    An optimum outside the batch sizes or lrs tried (or a fit with no minimum) is an error unless
    ``keep_edge``, when it is reported flagged (and later left out of laws).
    """
    _check_levels(group)
    rng = rng or np.random.default_rng(DEFAULT_SEED)
    idx, used_window = fit_window(group, window)
    lx, ly = np.log(group.batch_sizes), np.log(group.lrs)
    centre = (float(lx[idx].mean()), float(ly[idx].mean()))
    A = design(lx[idx] - centre[0], ly[idx] - centre[1])
    beta = weighted_quadratic(A, group.losses[idx][None])
    point = bowl(beta)
    resid = group.losses[idx] - A @ beta[0]
    method, boot_beta = _resample(group, idx, A, n_resamples, rng)
    boot = bowl(boot_beta)
    valid = boot.is_minimum & np.isfinite(boot.x)
    bx = np.where(valid, np.exp(boot.x + centre[0]), np.nan)
    by = np.where(valid, np.exp(boot.y + centre[1]), np.nan)
    df = len(idx) - QUADRATIC_TERMS
    i_min = int(np.argmin(group.losses))
    flags, warnings = [], []
    tried_b, tried_lr = group.tried_batch_sizes, group.tried_lrs
    if group.batch_sizes[i_min] in (tried_b[0], tried_b[-1]) or group.lrs[i_min] in (tried_lr[0], tried_lr[-1]):
        flags.append("argmin_at_edge")
        warnings.append(f"group {group.name}: the smallest loss was measured at the edge of the grid "
                        f"(batch {group.batch_sizes[i_min]:g}, lr {group.lrs[i_min]:g})")
    b_opt = lr_opt = loss_opt = None
    if not point.is_minimum[0]:
        flags.append("no_minimum")
        problem = ("the losses near the minimum do not form a bowl in (log B, log lr): the fitted "
                   "quadratic has no minimum")
    else:
        b_opt, lr_opt = float(np.exp(point.x[0] + centre[0])), float(np.exp(point.y[0] + centre[1]))
        loss_opt = float(point.loss[0])
        problem = None
        if not tried_b[0] <= b_opt <= tried_b[-1]:
            flags.append("b_opt_outside_grid")
            problem = (f"the fitted optimum B_opt = {b_opt:.4g} lies outside the batch sizes tried "
                       f"[{tried_b[0]:g}, {tried_b[-1]:g}]")
        if not tried_lr[0] <= lr_opt <= tried_lr[-1]:
            flags.append("lr_opt_outside_grid")
            problem = ((problem + "; ") if problem else "") + (
                f"the fitted optimum lr_opt = {lr_opt:.4g} lies outside the lrs tried "
                f"[{tried_lr[0]:g}, {tried_lr[-1]:g}]")
    if problem:
        if not keep_edge:
            raise ScalingError(f"group {group.name}: {problem}; widen the grid there, or pass --keep-edge to "
                               f"report it flagged (and leave it out of laws)")
        warnings.append(f"group {group.name}: {problem} (kept, flagged, left out of laws)")
    if len(idx) < MIN_FIT_CELLS:
        warnings.append(f"group {group.name}: the bowl is fitted to {len(idx)} cells (fewer than {MIN_FIT_CELLS}); "
                        f"its intervals are wide")
    n_valid = int(valid.sum())
    if n_valid < MIN_VALID_FRACTION * n_resamples:
        flags.append("unstable_bootstrap")
        warnings.append(f"group {group.name}: only {n_valid} of {n_resamples} bootstrap fits have a minimum; "
                        f"the intervals are unreliable")
    L = group.losses
    inside = L <= (1.0 + band) * L.min()
    band_info = {"fraction": float(band), "loss_max": float((1.0 + band) * L.min()), "runs_within": int(inside.sum()),
                 "batch_sizes_within": sorted({float(b) for b in group.batch_sizes[inside]}),
                 "lrs_within": [float(group.lrs[inside].min()), float(group.lrs[inside].max())],
                 **band_extent(point, band, centre)}
    seq = group.seq_len
    b_ci = _interval(bx, confidence, df) if n_valid else (None, None)
    return GroupOptimum(
        params=group.params, tokens=group.tokens, seq_len=seq, b_opt=b_opt, b_opt_ci=b_ci,
        b_opt_tokens=None if seq is None or b_opt is None else b_opt * seq,
        b_opt_tokens_ci=None if seq is None or b_ci[0] is None else (b_ci[0] * seq, b_ci[1] * seq),
        lr_opt=lr_opt, lr_opt_ci=_interval(by, confidence, df) if n_valid else (None, None),
        loss_opt=loss_opt, loss_min=float(L.min()), argmin_batch=float(group.batch_sizes[i_min]),
        argmin_lr=float(group.lrs[i_min]), band=band_info, n_runs=group.n_runs, n_fit=len(idx),
        fit_window=used_window, bootstrap=method, n_resamples=int(n_resamples), n_valid=n_valid, df=df,
        rms_residual=float(np.sqrt(np.mean(resid ** 2))), edge=bool(flags), flags=tuple(flags),
        warnings=tuple(warnings), draws={"b_opt": bx, "lr_opt": by})


def optima(grid: LossGrid, *, band: float = DEFAULT_BAND, window: float = DEFAULT_FIT_WINDOW,
           n_resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
           seed: int = DEFAULT_SEED, keep_edge: bool = False) -> OptimumResult:
    """B_opt and lr_opt of every group of a loss grid (``scaling optimum``); seeded, reproducible."""
    if not (0.0 < confidence < 1.0):
        raise ScalingError(f"confidence must lie in (0, 1), got {confidence}")
    if int(n_resamples) < 1:
        raise ScalingError(f"the number of bootstrap resamples must be positive, got {n_resamples}")
    for name, value in (("band", band), ("fit window", window)):
        if not (np.isfinite(value) and 0.0 < value < MAX_WINDOW):
            raise ScalingError(f"the {name} must be a fraction in (0, {MAX_WINDOW:g}), got {value}")
    streams = np.random.SeedSequence(seed).spawn(len(grid.groups))
    groups = tuple(group_optimum(g, band=band, window=window, n_resamples=int(n_resamples), confidence=confidence,
                                 keep_edge=keep_edge, rng=np.random.default_rng(s))
                   for g, s in zip(grid.groups, streams))
    warnings = list(grid.warnings)
    for g in groups:
        warnings.extend(w for w in g.warnings if w not in warnings)
    return OptimumResult(groups=groups, left_out=grid.left_out, sha256=grid.sha256, source=grid.source,
                         band=float(band), confidence=float(confidence), warnings=tuple(warnings))
