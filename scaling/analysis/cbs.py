"""Critical batch size per (params, tokens) group, with bootstrap intervals.

For each group of a steps table: fit the step model (``stepmodel``), read off the Definition-1
CBS of Zhang et al. 2024 (``definitions``) and McCandlish's B_noise beside it, an empirical CBS
read from the measured S(B) by interpolation (a check on the fit), and bootstrap intervals on
each. Warnings are collected as data in the result (the CLI prints them to stderr).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from scaling.analysis import stepmodel
from scaling.analysis.bootstrap import (DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED,
                                        percentile_interval, residual_resamples, seed_resamples)
from scaling.analysis.definitions import CBS_DEFINITION, DEFAULT_OVERHEAD, cbs_from_curve, cbs_from_fit
from scaling.analysis.steps_table import Group, StepsTable, _fmt
from scaling.errors import ScalingError

MIN_BATCH_SIZES_FREE = 4  # three parameters need one residual degree of freedom


@dataclass(frozen=True)
class GroupCBS:
    """CBS of one (params, tokens) group. Batch sizes in sequences; ``*_tokens`` x seq_len."""

    params: float
    tokens: float
    seq_len: Optional[float]
    target_loss: Optional[float]
    model: str
    reference_batch: float
    overhead: float
    cbs: float
    cbs_ci: tuple
    cbs_tokens: Optional[float]
    cbs_tokens_ci: Optional[tuple]
    b_noise: float            # McCandlish et al. 2018 B_crit = B_noise (not the Definition-1 CBS)
    b_noise_ci: tuple
    s_min: float
    s_min_ci: tuple
    alpha: float
    alpha_ci: tuple
    cbs_empirical: Optional[float]
    batch_sizes: tuple
    steps: tuple
    fitted_steps: tuple
    residuals: tuple          # log(S measured) - log(S fitted)
    rms_residual: float
    bootstrap: str            # "seeds" or "residuals"
    df: int                   # residual degrees of freedom (expanded percentile intervals)
    n_resamples: int
    flags: tuple
    warnings: tuple
    draws: dict = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in (
            "params", "tokens", "cbs", "cbs_ci", "cbs_tokens", "cbs_tokens_ci", "s_min", "s_min_ci",
            "b_noise", "b_noise_ci", "reference_batch", "overhead", "model", "alpha", "alpha_ci",
            "cbs_empirical", "seq_len", "target_loss", "batch_sizes", "steps", "fitted_steps",
            "residuals", "rms_residual", "bootstrap", "df", "n_resamples", "flags", "warnings")}
        d["b_crit_mccandlish"] = self.b_noise
        d["cbs_definition"] = CBS_DEFINITION
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


@dataclass(frozen=True)
class CBSResult:
    groups: tuple
    excluded: tuple
    sha256: str
    source: str
    model: str
    overhead: float
    confidence: float
    warnings: tuple

    def to_dict(self) -> dict:
        return {"groups": [g.to_dict() for g in self.groups],
                "excluded": [e.describe() for e in self.excluded],
                "model": self.model, "overhead": self.overhead, "confidence": self.confidence,
                "cbs_definition": CBS_DEFINITION, "input_sha256": self.sha256,
                "warnings": list(self.warnings)}


def empirical_cbs(batch_sizes, steps, reference_batch, overhead=DEFAULT_OVERHEAD) -> Optional[float]:
    """Definition 1 read off the measured S(B) on its grid, crossing interpolated in log B.

    None when the reference batch is not on the grid or even the largest batch satisfies the
    condition (the CBS is then only known to exceed it). ``definitions.cbs_from_curve``, the
    curve reader the NQM testbed uses on its exact S(B).
    """
    try:
        res = cbs_from_curve(list(batch_sizes), list(steps), reference_batch, overhead)
    except ValueError:
        return None
    return float(res.cbs) if res.bounded else None


def _interval(draws, confidence, df=None):
    lo, hi = percentile_interval(draws, confidence, df=df)
    return (float(lo), float(hi))


def group_cbs(group: Group, *, reference_batch: Optional[float] = None, overhead: float = DEFAULT_OVERHEAD,
              model: str = "hyperbola", n_resamples: int = DEFAULT_RESAMPLES,
              confidence: float = DEFAULT_CONFIDENCE, rng: Optional[np.random.Generator] = None) -> GroupCBS:
    """Fit the step model to one group, Definition-1 CBS with a bootstrap interval."""
    if model not in stepmodel.MODELS:
        raise ScalingError(f"unknown step model {model!r}; expected one of {', '.join(stepmodel.MODELS)}")
    if not (overhead > 0 and np.isfinite(overhead)):
        raise ScalingError(f"overhead must be a positive number, got {overhead}")
    name = f"params={_fmt(group.params)} tokens={_fmt(group.tokens)}"
    B, S = group.batch_sizes, group.steps
    if model == "free" and len(B) < MIN_BATCH_SIZES_FREE:
        raise ScalingError(f"group {name}: the free-exponent model needs at least "
                           f"{MIN_BATCH_SIZES_FREE} batch sizes, got {len(B)}")
    b_ref = float(B.min()) if reference_batch is None else float(reference_batch)
    if not (b_ref > 0 and np.isfinite(b_ref)):
        raise ScalingError(f"reference batch must be a positive number, got {reference_batch}")
    rng = rng or np.random.default_rng(DEFAULT_SEED)
    warnings, flags = list(group.warnings), []
    y = np.log(S)
    bounds = stepmodel.Bounds.for_batches(B)
    point = stepmodel.fit_many(B, y[None], model, bounds)
    scale = float(stepmodel.robust_scale(point.residuals)[0]) if model == "huber" else None
    point = stepmodel.polish(B, y, point, model, bounds, huber_scale=scale)
    c, u, a = float(point.log_s_min[0]), float(point.log_b_noise[0]), float(point.alpha[0])
    fitted_log = c + stepmodel.model_curve(np.log(B), u, a)
    cbs = float(cbs_from_fit(np.exp(u), a, b_ref, overhead))

    # bootstrap
    if group.has_seeds:
        method, Y = "seeds", seed_resamples(group.replicates, n_resamples, rng)
    else:
        method = "residuals"
        Y = residual_resamples(fitted_log, y - fitted_log, stepmodel.n_parameters(model), n_resamples, rng)
    boot = stepmodel.fit_many(B, Y, model, bounds, huber_scale=scale)
    d_bn = np.exp(boot.log_b_noise)
    draws = {"cbs": cbs_from_fit(d_bn, boot.alpha, b_ref, overhead), "b_noise": d_bn,
             "s_min": np.exp(boot.log_s_min), "alpha": boot.alpha}

    # diagnostics
    b_lo, b_hi = float(B.min()), float(B.max())
    if point.at_lower[0] or point.at_upper[0]:
        flags.append("b_noise_at_bound")
    if point.at_upper[0]:
        flags.append("no_diminishing_returns")
        warnings.append(f"group {name}: S(B) still falls like 1/B up to the largest batch "
                        f"{b_hi:g} (B_noise at its search bound); no CBS can be read off")
    elif cbs > b_hi:
        flags.append("no_diminishing_returns")
        warnings.append(f"group {name}: the data do not reach the diminishing-returns regime; "
                        f"CBS {cbs:.4g} lies beyond the largest batch {b_hi:g} (extrapolated by the fit)")
    if np.exp(u) < b_lo:
        flags.append("no_linear_scaling")
        warnings.append(f"group {name}: the data never leave the diminishing-returns regime "
                        f"(B_noise {np.exp(u):.3g} < smallest batch {b_lo:g}); the CBS is set by "
                        f"the reference batch")
    if b_ref < b_lo or b_ref > b_hi:
        flags.append("reference_outside_data")
        warnings.append(f"group {name}: reference batch {b_ref:g} lies outside the measured "
                        f"batch sizes [{b_lo:g}, {b_hi:g}]; S(B_ref) is extrapolated")
    emp = empirical_cbs(B, S, b_ref, overhead)
    seq = group.seq_len
    df = len(B) - stepmodel.n_parameters(model)
    cbs_ci = _interval(draws["cbs"], confidence, df)
    return GroupCBS(
        params=group.params, tokens=group.tokens, seq_len=seq, target_loss=group.target_loss,
        model=model, reference_batch=b_ref, overhead=float(overhead), cbs=cbs, cbs_ci=cbs_ci,
        cbs_tokens=None if seq is None else cbs * seq,
        cbs_tokens_ci=None if seq is None else (cbs_ci[0] * seq, cbs_ci[1] * seq),
        b_noise=float(np.exp(u)), b_noise_ci=_interval(draws["b_noise"], confidence, df),
        s_min=float(np.exp(c)), s_min_ci=_interval(draws["s_min"], confidence, df),
        alpha=a, alpha_ci=_interval(draws["alpha"], confidence, df), cbs_empirical=emp,
        batch_sizes=tuple(float(b) for b in B), steps=tuple(float(s) for s in S),
        fitted_steps=tuple(float(v) for v in np.exp(fitted_log)),
        residuals=tuple(float(v) for v in y - fitted_log),
        rms_residual=float(np.sqrt(np.mean((y - fitted_log) ** 2))), bootstrap=method, df=df,
        n_resamples=int(n_resamples), flags=tuple(flags), warnings=tuple(warnings), draws=draws)


def critical_batch_sizes(table: StepsTable, *, reference_batch: Optional[float] = None,
                         overhead: float = DEFAULT_OVERHEAD, model: str = "hyperbola",
                         n_resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
                         seed: int = DEFAULT_SEED) -> CBSResult:
    """Definition-1 CBS (Zhang et al. 2024) of every group of ``table``, with intervals.

    ``reference_batch`` defaults to the smallest batch of each group; ``overhead`` is eps.
    Resampling is seeded (``seed``) so results are reproducible; groups get independent streams.
    """
    if not (0.0 < confidence < 1.0):
        raise ScalingError(f"confidence must lie in (0, 1), got {confidence}")
    if int(n_resamples) < 1:
        raise ScalingError(f"the number of bootstrap resamples must be positive, got {n_resamples}")
    streams = np.random.SeedSequence(seed).spawn(len(table.groups))
    groups = tuple(group_cbs(g, reference_batch=reference_batch, overhead=overhead, model=model,
                             n_resamples=n_resamples, confidence=confidence,
                             rng=np.random.default_rng(s)) for g, s in zip(table.groups, streams))
    warnings = list(table.warnings)
    for g in groups:
        warnings.extend(w for w in g.warnings if w not in warnings)
    return CBSResult(groups=groups, excluded=table.excluded, sha256=table.sha256, source=table.source,
                     model=model, overhead=float(overhead), confidence=float(confidence),
                     warnings=tuple(warnings))
