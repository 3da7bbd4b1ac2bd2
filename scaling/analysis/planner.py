"""A training plan from a law: steps, chips, time and cost against batch size.

Resource consumption = (consumption per step) x (number of steps), per batch size B (sequences
of T tokens), for a model of N non-embedding parameters:

- steps S(B): from a step model, S_min (1 + B_noise / B) (McCandlish et al. 2018, eq. 2.11), the
  steps to the law's target loss; without one (a law that gives only a CBS or a B_opt), the
  fixed data budget S = D / (B T), whose loss is not predicted.
- chips = min(ceil(B / b), K) for b sequences per chip per micro-step and at most K chips;
  accumulation = ceil(B / (chips b)) micro-steps per optimizer step.
- time per step = 6 N B T / (chips F M) (6 N FLOPs per token for the forward and backward pass,
  Kaplan et al. 2020 eq. 2.1; F the chip's peak FLOP/s, M the model FLOPs utilisation, Chowdhery
  et al. 2022 App. B) plus, with a link bandwidth W, one ring all-reduce of the gradients,
  2 (chips - 1) / chips x N x g / W seconds (Patarasuk & Yuan 2009; g bytes per gradient value),
  not overlapped with compute.
- wall = S x time per step; accelerator-hours = chips x wall / 3600; cost = price x hours.
- overhead over linear scaling = B S(B) / (B_ref S(B_ref)) - 1 (Zhang et al. 2024, the quantity
  Definition 1 bounds by eps at the CBS), with a step model only.

Rows: powers of two around the CBS (or B_opt, or B_crit), the CBS itself, B_opt and B_crit.
Marked: the CBS, B_opt, the fastest plan, the cheapest (fewest accelerator-hours), and the
fastest whose cost is within ``within`` of the cheapest; ``front`` lists the plans no other plan
beats in both time and cost.
Without a step model, rows past the CBS (``beyond_cbs``) reach a worse loss on D tokens and are
never chosen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from scaling.analysis.bootstrap import DEFAULT_CONFIDENCE, percentile_interval
from scaling.analysis.definitions import DEFAULT_OVERHEAD, cbs_hyperbola
from scaling.analysis.presets import FLOPS_PER_PARAM_TOKEN
from scaling.errors import ScalingError

SECONDS_PER_HOUR = 3600.0
GRADIENT_BYTES = 4.0            # fp32 gradients
DEFAULT_PER_CHIP_BATCH = 1      # one sequence per chip: the most data parallelism a batch allows
RANGE_OCTAVES = 5               # rows from anchor / 2^5 to anchor x 2^5 (powers of two)
TIE_RTOL = 1e-9                 # two plans this close in time or cost are tied
CONSISTENCY_LOG_TOL = 0.05      # CBS law vs the step model's own Definition-1 CBS: say so beyond 5%


@dataclass(frozen=True)
class Hardware:
    """The machine a plan runs on (per chip; bandwidth in bytes/s, price per accelerator-hour)."""

    chip_flops: float
    mfu: float
    chips_max: Optional[int] = None
    per_chip_batch: int = DEFAULT_PER_CHIP_BATCH
    link_bandwidth: Optional[float] = None
    price: Optional[float] = None
    gradient_bytes: float = GRADIENT_BYTES

    def check(self) -> "Hardware":
        def positive(name, v):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ScalingError(f"--{name} must be a positive number, got {v}")

        positive("chip-flops", self.chip_flops)
        if not (math.isfinite(self.mfu) and 0 < self.mfu <= 1):
            raise ScalingError(f"--mfu must lie in (0, 1], got {self.mfu}")
        if self.chips_max is not None and not (float(self.chips_max).is_integer() and self.chips_max >= 1):
            raise ScalingError(f"--chips-max must be a whole number of chips, at least 1; got {self.chips_max}")
        if not (float(self.per_chip_batch).is_integer() and self.per_chip_batch >= 1):
            raise ScalingError(f"--per-chip-batch must be a whole number of sequences, at least 1; "
                               f"got {self.per_chip_batch}")
        if self.link_bandwidth is not None:
            positive("link-bandwidth", self.link_bandwidth)
        if self.price is not None and not (math.isfinite(self.price) and self.price >= 0):
            raise ScalingError(f"--price must be a non-negative number, got {self.price}")
        positive("gradient-bytes", self.gradient_bytes)
        return self


@dataclass(frozen=True)
class PlanLaw:
    """What a law says at (N, D): a step model (S_min, B_noise, B_ref) if it has one, CBS, B_opt, B_crit."""

    name: str
    seq_len: float
    s_min: Optional[float] = None
    b_noise: Optional[float] = None
    reference_batch: Optional[float] = None
    cbs: Optional[float] = None
    b_opt: Optional[float] = None
    b_crit: Optional[float] = None      # McCandlish's B_crit = B_noise from a law that gives only it
    s_min_draws: Optional[np.ndarray] = field(default=None, repr=False, compare=False)
    b_noise_draws: Optional[np.ndarray] = field(default=None, repr=False, compare=False)
    confidence: float = DEFAULT_CONFIDENCE

    @property
    def has_step_model(self) -> bool:
        return self.s_min is not None and self.b_noise is not None


@dataclass(frozen=True)
class PlanRow:
    batch_size: float
    steps: float
    steps_ci: Optional[tuple]
    tokens: float
    chips: int
    accumulation: int
    compute_s: float
    allreduce_s: float
    step_s: float
    wall_s: float
    accelerator_hours: float
    cost: Optional[float]
    overhead: Optional[float]
    marks: tuple = ()

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("batch_size", "steps", "steps_ci", "tokens", "chips", "accumulation",
                                           "step_s", "compute_s", "allreduce_s", "wall_s", "accelerator_hours",
                                           "cost", "overhead", "marks")}
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


@dataclass(frozen=True)
class Plan:
    params: float
    tokens: float
    seq_len: float
    law: str
    hardware: Hardware
    rows: tuple
    cbs: Optional[float]
    b_opt: Optional[float]
    b_crit: Optional[float]
    fastest: float
    cheapest: float
    fastest_within: float
    within: float
    front: tuple
    step_model: bool
    cannot_plan: tuple
    assumptions: tuple

    def to_dict(self) -> dict:
        hw = self.hardware
        return {"rows": [r.to_dict() for r in self.rows], "cbs": self.cbs, "b_opt": self.b_opt,
                "b_crit": self.b_crit, "fastest": self.fastest, "cheapest": self.cheapest,
                "fastest_within": self.fastest_within,
                "within": self.within, "front": list(self.front), "step_model": self.step_model,
                "cannot_plan": list(self.cannot_plan), "assumptions": list(self.assumptions),
                "params": self.params, "tokens": self.tokens, "seq_len": self.seq_len, "law": self.law,
                "hardware": {"chip_flops": hw.chip_flops, "mfu": hw.mfu, "chips_max": hw.chips_max,
                             "per_chip_batch": hw.per_chip_batch, "link_bandwidth": hw.link_bandwidth,
                             "price": hw.price, "gradient_bytes": hw.gradient_bytes},
                "units": {"batch_size": "sequences", "tokens": "tokens", "step_s": "seconds",
                          "wall_s": "seconds", "cost": "price x accelerator-hours"}}


def chips_for(batch: float, hw: Hardware) -> tuple:
    """(chips, accumulation): ceil(B / b) chips capped at chips_max, micro-steps to hold B."""
    need = max(1, math.ceil(batch / hw.per_chip_batch - TIE_RTOL))
    chips = need if hw.chips_max is None else min(need, int(hw.chips_max))
    return chips, max(1, math.ceil(batch / (chips * hw.per_chip_batch) - TIE_RTOL))


def step_seconds(params: float, batch: float, seq_len: float, chips: int, hw: Hardware) -> tuple:
    """(compute, all-reduce) seconds of one optimizer step (6 N B T / (chips F M); ring all-reduce)."""
    compute = FLOPS_PER_PARAM_TOKEN * params * batch * seq_len / (chips * hw.chip_flops * hw.mfu)
    if hw.link_bandwidth is None or chips == 1:
        return compute, 0.0
    return compute, 2.0 * (chips - 1) / chips * params * hw.gradient_bytes / hw.link_bandwidth


def batch_range(anchor: float) -> list:
    """Powers of two from anchor / 2^RANGE_OCTAVES to anchor x 2^RANGE_OCTAVES (at least 1)."""
    lo = max(0, math.floor(math.log2(anchor)) - RANGE_OCTAVES)
    hi = math.ceil(math.log2(anchor)) + RANGE_OCTAVES
    return [float(2 ** k) for k in range(lo, hi + 1)]


def _steps(law: PlanLaw, batch: float, tokens: float):
    if law.has_step_model:
        steps = law.s_min * (1.0 + law.b_noise / batch)
        ci = None
        if law.s_min_draws is not None and law.b_noise_draws is not None:
            lo, hi = percentile_interval(law.s_min_draws * (1.0 + law.b_noise_draws / batch), law.confidence)
            ci = (float(lo), float(hi))
        over = (batch + law.b_noise) / (law.reference_batch + law.b_noise) - 1.0
        return steps, ci, over
    return tokens / (batch * law.seq_len), None, None


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= TIE_RTOL * max(abs(a), abs(b))


def plan(law: PlanLaw, params: float, tokens: float, hw: Hardware, *, within: float = DEFAULT_OVERHEAD,
         batch_sizes=None) -> Plan:
    """Steps, chips, time and cost per batch size from ``law`` at (params, tokens) on ``hw``."""
    hw = hw.check()
    for name, v in (("params", params), ("tokens", tokens), ("seq-len", law.seq_len)):
        if not (v is not None and math.isfinite(v) and v > 0):
            raise ScalingError(f"--{name} must be a positive number, got {v}")
    if not (math.isfinite(within) and within >= 0):
        raise ScalingError(f"--within must be a non-negative fraction, got {within}")
    if law.has_step_model and not (law.reference_batch and law.reference_batch > 0):
        raise ScalingError("the law's step model has no reference batch; give --reference-batch")
    anchor = law.cbs or law.b_opt or law.b_crit
    if batch_sizes is None:
        if anchor is None:
            raise ScalingError(f"law {law.name} gives neither a CBS nor B_opt here; give --batch-sizes")
        batch_sizes = batch_range(anchor)
    batch_sizes = [float(b) for b in batch_sizes]
    if any(not (math.isfinite(b) and b > 0) for b in batch_sizes):
        raise ScalingError(f"batch sizes must be positive numbers, got {batch_sizes}")
    special = {"cbs": law.cbs, "b_opt": law.b_opt, "b_crit": law.b_crit}
    all_b = sorted(set(batch_sizes) | {v for v in special.values() if v is not None})
    rows = []
    for b in all_b:
        steps, steps_ci, over = _steps(law, b, tokens)
        chips, accum = chips_for(b, hw)
        compute, comm = step_seconds(params, b, law.seq_len, chips, hw)
        wall = steps * (compute + comm)
        hours = chips * wall / SECONDS_PER_HOUR
        marks = [k for k, v in special.items() if v is not None and _close(v, b)]
        if not law.has_step_model and law.cbs is not None and b > law.cbs * (1 + TIE_RTOL):
            marks.append("beyond_cbs")
        rows.append(PlanRow(batch_size=b, steps=steps, steps_ci=steps_ci, tokens=b * law.seq_len * steps,
                            chips=chips, accumulation=accum, compute_s=compute, allreduce_s=comm,
                            step_s=compute + comm, wall_s=wall, accelerator_hours=hours,
                            cost=None if hw.price is None else hours * hw.price, overhead=over, marks=tuple(marks)))
    # choices: ties (within TIE_RTOL) in one criterion are broken by the other, then by the smaller batch
    def level(x):
        return round(math.log(x) / math.log1p(TIE_RTOL)) if x > 0 else -math.inf

    def by_time(r):
        return (level(r.wall_s), level(r.accelerator_hours), r.batch_size)

    def by_cost(r):
        return (level(r.accelerator_hours), level(r.wall_s), r.batch_size)

    # without a step model, batch sizes past the CBS reach a worse loss: they are shown, never chosen
    pool = [r for r in rows if "beyond_cbs" not in r.marks]
    fastest, cheapest = min(pool, key=by_time), min(pool, key=by_cost)
    budget = (1.0 + within) * cheapest.accelerator_hours * (1 + TIE_RTOL)
    best_within = min((r for r in pool if r.accelerator_hours <= budget), key=by_time)
    def dominates(o, r):       # as fast and as cheap, and better in one (or the smaller batch when tied)
        return by_time(o)[:2] <= by_time(r)[:2] and by_cost(o)[:2] <= by_cost(r)[:2] and by_time(o) < by_time(r)

    front = [r.batch_size for r in pool if not any(dominates(o, r) for o in pool if o is not r)]
    rows = [PlanRow(**{**r.__dict__, "marks": r.marks + tuple(
        m for m, c in (("fastest", fastest), ("cheapest", cheapest), ("fastest_within", best_within))
        if c.batch_size == r.batch_size)}) for r in rows]
    cannot, assumptions = [], [
        f"compute: {FLOPS_PER_PARAM_TOKEN:g} N FLOPs per token (forward and backward; attention and embeddings "
        f"not counted) at MFU {hw.mfu:g} of {hw.chip_flops:.4g} FLOP/s per chip",
        "data parallelism only: every chip holds the whole model; a batch is split over chips, then into "
        "micro-steps (gradient accumulation) beyond chips-max",
        "all-reduce: one ring all-reduce of N gradients per optimizer step, not overlapped with compute"
        if hw.link_bandwidth else "no communication time (no --link-bandwidth given)"]
    if law.has_step_model:
        assumptions.append(f"steps: S(B) = S_min (1 + B_noise / B) to the law's target loss, S_min "
                           f"{law.s_min:.4g}, B_noise {law.b_noise:.4g}; overhead against B_ref "
                           f"{law.reference_batch:g}")
        if law.cbs is not None:
            implied = cbs_hyperbola(law.b_noise, law.reference_batch, DEFAULT_OVERHEAD)
            if abs(np.log(implied / law.cbs)) > CONSISTENCY_LOG_TOL:
                assumptions.append(f"the CBS law ({law.cbs:.4g}) and the S_min, B_noise laws are fitted "
                                   f"separately; here the step model puts the {100 * DEFAULT_OVERHEAD:g}% "
                                   f"overhead at B = {float(implied):.4g}")
    else:
        gives = "a CBS" if law.cbs is not None else "B_opt" if law.b_opt is not None else "B_crit"
        cannot.append(f"steps to a target loss: law {law.name} has no step model S(B) (it gives only {gives}); "
                      f"every row trains the D tokens instead, S = D / (B T), and the loss each reaches is not "
                      f"predicted")
        cannot.append("the overhead over linear scaling of each batch size (needs S(B))")
        if law.cbs is not None:
            cannot.append("rows marked beyond_cbs lie past the CBS, where the same loss needs more than "
                          f"{100 * DEFAULT_OVERHEAD:g}% more tokens than linear scaling allows, so D tokens reach a "
                          "worse loss; they are never chosen as fastest or cheapest")
    return Plan(params=float(params), tokens=float(tokens), seq_len=float(law.seq_len), law=law.name, hardware=hw,
                rows=tuple(rows), cbs=law.cbs, b_opt=law.b_opt, b_crit=law.b_crit, fastest=fastest.batch_size,
                cheapest=cheapest.batch_size, fastest_within=best_within.batch_size, within=float(within),
                front=tuple(front), step_model=law.has_step_model, cannot_plan=tuple(cannot),
                assumptions=tuple(assumptions))


def _seq_len(name: str, own: Optional[float], given: Optional[float]) -> float:
    if own is not None and given is not None and not _close(float(own), float(given)):
        raise ScalingError(f"law {name} counts sequences of {own:g} tokens; --seq-len {given:g} disagrees")
    seq = given if given is not None else own
    if seq is None:
        raise ScalingError(f"law {name} does not say how many tokens a sequence has; give --seq-len")
    return float(seq)


def law_from_fit(fit, params: float, tokens: float, *, seq_len: Optional[float] = None,
                 reference_batch: Optional[float] = None, name: str = "fit", seed: int = 0) -> PlanLaw:
    """What a fit file says at (N, D): CBS and the step model (``scaling fit``) or B_opt (``scaling optimum``)."""
    from scaling.analysis.predict import predict

    out = predict(fit, params=params, tokens=tokens, seed=seed)
    seq = _seq_len(name, fit.meta.get("seq_len"), seq_len)
    if fit.kind == "optimum":
        return PlanLaw(name=name, seq_len=seq, b_opt=out["b_opt"], confidence=out["confidence"])
    ref = reference_batch if reference_batch is not None else fit.meta.get("reference_batch")
    if isinstance(ref, list):
        raise ScalingError("the fit's groups used different reference batches; give --reference-batch")
    values = {v: {"params": params, "tokens": tokens}[v] for v in fit.variables}
    rng = np.random.default_rng(seed)
    s_d = fit.laws["s_min"].value_draws(values, rng) if "s_min" in fit.laws else None
    n_d = fit.laws["b_noise"].value_draws(values, rng) if "b_noise" in fit.laws else None
    return PlanLaw(name=name, seq_len=seq, s_min=out.get("s_min"), b_noise=out.get("b_noise"),
                   reference_batch=None if ref is None else float(ref), cbs=out["cbs"],
                   s_min_draws=s_d, b_noise_draws=n_d, confidence=out["confidence"])


def law_from_preset(name: str, params: float, tokens: float, *, seq_len: Optional[float] = None,
                    loss: Optional[float] = None, compute: Optional[float] = None) -> PlanLaw:
    """What a published law says at (N, D): a CBS or a B_opt, in sequences (no step model)."""
    from scaling.analysis.predict import predict_preset
    from scaling.analysis.presets import get_preset

    p = get_preset(name)
    seq = _seq_len(name, p.seq_len, seq_len)
    out = predict_preset(name, params=params, tokens=tokens, loss=loss, compute=compute, seq_len=seq)
    if p.quantity == "b_opt":
        return PlanLaw(name=name, seq_len=seq, b_opt=out["b_opt_tokens"] / seq)
    if p.quantity == "b_crit":
        return PlanLaw(name=name, seq_len=seq, b_crit=out["cbs_tokens"] / seq)
    return PlanLaw(name=name, seq_len=seq, cbs=out["cbs_tokens"] / seq)
