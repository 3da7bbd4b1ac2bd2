"""Predictions of the CBS (and of steps at a planned batch), or of B_opt and lr_opt, for a new budget.

From a fit file: the CBS law evaluated at (params, tokens) with a bootstrap interval that
includes the law's lack-of-fit scatter; with ``batch`` and the S_min, B_noise laws,
S(B) = S_min (1 + B_noise / B) (McCandlish et al. 2018) and the overhead over linear scaling,
B S(B) / (B_ref S(B_ref)) - 1 (Zhang et al. 2024). Every prediction says whether and how far it
extrapolates: factor = value / fitted max (or fitted min / value) per variable. A fit file of
``scaling optimum`` (``kind: optimum``) gives the loss-optimal B_opt and lr_opt instead.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from scaling.analysis.bootstrap import percentile_interval
from scaling.analysis.fitfile import LawFit
from scaling.analysis.presets import FLOPS_PER_PARAM_TOKEN, get_preset
from scaling.errors import ScalingError


def _positive(name, value):
    if value is None:
        return None
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ScalingError(f"--{name.replace('_', '-')} must be a positive number, got {value}")
    return value


def extrapolation(values: dict, ranges: dict) -> dict:
    """Per variable: value, fitted range, factor beyond it (1 inside), and a one-line note."""
    out, notes = {}, []
    for v, (lo, hi) in ranges.items():
        x = values[v]
        if x > hi:
            factor, side = x / hi, "above the largest"
        elif x < lo:
            factor, side = lo / x, "below the smallest"
        else:
            factor, side = 1.0, None
        out[v] = {"value": x, "fitted_min": lo, "fitted_max": hi, "factor": factor}
        if side:
            notes.append(f"{v} {x:.4g} is {factor:.3g}x {side} fitted {v} "
                         f"({hi if x > hi else lo:.4g})")
    return {"extrapolates": bool(notes), "variables": out, "notes": notes}


def _interval(draws, confidence):
    lo, hi = percentile_interval(draws, confidence)
    return [float(lo), float(hi)]


def _values(fit: LawFit, params, tokens) -> tuple:
    values = {"params": _positive("params", params), "tokens": _positive("tokens", tokens)}
    missing = [v for v in fit.variables if values[v] is None]
    if missing:
        raise ScalingError(f"this law is fitted against {','.join(fit.variables)}; give "
                           + " and ".join(f"--{m}" for m in missing))
    return values, {v: values[v] for v in fit.variables}


def predict_optimum(fit: LawFit, *, params: Optional[float] = None, tokens: Optional[float] = None,
                    seed: int = 0) -> dict:
    """Loss-optimal B_opt (sequences, tokens) and lr_opt at (params, tokens), with intervals."""
    values, used = _values(fit, params, tokens)
    rng = np.random.default_rng(seed)
    b_law, lr_law = fit.laws["b_opt"], fit.laws["lr_opt"]
    conf = b_law.confidence
    b_opt, b_ci = b_law.value(used), _interval(b_law.value_draws(used, rng), conf)
    seq = fit.meta.get("seq_len")
    extra = extrapolation(used, b_law.fitted_range)
    return {"b_opt": b_opt, "b_opt_ci": b_ci, "b_opt_tokens": None if seq is None else b_opt * seq,
            "b_opt_tokens_ci": None if seq is None else [b_ci[0] * seq, b_ci[1] * seq],
            "lr_opt": lr_law.value(used), "lr_opt_ci": _interval(lr_law.value_draws(used, rng), conf),
            "extrapolation": extra, "params": values["params"], "tokens": values["tokens"],
            "against": list(fit.variables), "seq_len": seq, "confidence": conf,
            "definition": fit.meta.get("definition"), "form": fit.meta.get("form", "power"),
            "units": {"b_opt": "sequences", "b_opt_tokens": "tokens", "lr_opt": "learning rate"},
            "warnings": [f"extrapolation: {n}" for n in extra["notes"]]}


def predict(fit: LawFit, *, params: Optional[float] = None, tokens: Optional[float] = None,
            batch: Optional[float] = None, reference_batch: Optional[float] = None,
            seed: int = 0) -> dict:
    """CBS (sequences, tokens) at (params, tokens) from a fitted law, with interval and extrapolation.

    For a fit file of ``scaling optimum``: B_opt and lr_opt (``predict_optimum``)."""
    batch = _positive("batch", batch)
    if fit.kind == "optimum":
        out = predict_optimum(fit, params=params, tokens=tokens, seed=seed)
        if batch is not None:
            out["warnings"].append("--batch needs S_min and B_noise laws (a fit of `scaling fit`); this fit "
                                   "file holds B_opt and lr_opt laws")
        return out
    values, used = _values(fit, params, tokens)
    law = fit.cbs
    conf = law.confidence
    rng = np.random.default_rng(seed)
    cbs = law.value(used)
    cbs_ci = _interval(law.value_draws(used, rng), conf)
    seq = fit.meta.get("seq_len")
    extra = extrapolation(used, law.fitted_range)
    warnings = [f"extrapolation: {n}" for n in extra["notes"]]
    out = {"cbs": cbs, "cbs_ci": cbs_ci, "cbs_tokens": None if seq is None else cbs * seq,
           "cbs_tokens_ci": None if seq is None else [cbs_ci[0] * seq, cbs_ci[1] * seq],
           "extrapolation": extra, "params": values["params"], "tokens": values["tokens"],
           "against": list(fit.variables), "seq_len": seq, "confidence": conf,
           "cbs_definition": fit.meta.get("cbs_definition"), "overhead": fit.meta.get("overhead"),
           "units": {"cbs": "sequences", "cbs_tokens": "tokens"}}
    if "s_min" in fit.laws and "b_noise" in fit.laws:
        s_law, n_law = fit.laws["s_min"], fit.laws["b_noise"]
        s_d, n_d = s_law.value_draws(used, rng), n_law.value_draws(used, rng)
        s_min, b_noise = s_law.value(used), n_law.value(used)
        out.update(s_min=s_min, s_min_ci=_interval(s_d, conf), b_noise=b_noise,
                   b_noise_ci=_interval(n_d, conf))
        if batch is not None:
            ref = reference_batch if reference_batch is not None else fit.meta.get("reference_batch")
            if isinstance(ref, list):
                raise ScalingError("the fit's groups used different reference batches; give --reference-batch")
            ref = _positive("reference_batch", ref)
            steps = s_min * (1 + b_noise / batch)
            steps_d = s_d * (1 + n_d / batch)
            over = (batch + b_noise) / (ref + b_noise) - 1.0      # B S(B) / (B_ref S(B_ref)) - 1
            over_d = (batch + n_d) / (ref + n_d) - 1.0
            out["batch"] = {"batch_size": batch, "steps": steps, "steps_ci": _interval(steps_d, conf),
                            "tokens_per_step": None if seq is None else batch * seq,
                            "reference_batch": ref, "overhead_over_linear": over,
                            "overhead_over_linear_ci": _interval(over_d, conf),
                            "within_cbs": bool(batch <= cbs)}
    elif batch is not None:
        warnings.append("--batch needs S_min and B_noise laws, which this fit file lacks")
    out["warnings"] = warnings
    return out


def predict_preset(name: str, *, params: Optional[float] = None, tokens: Optional[float] = None,
                   loss: Optional[float] = None, compute: Optional[float] = None,
                   seq_len: Optional[float] = None, batch: Optional[float] = None) -> dict:
    """Batch size from a published law (``presets``); no interval (none was published).

    The keys name what the law predicts: ``cbs``/``cbs_tokens`` for a CBS or B_crit law,
    ``b_opt``/``b_opt_tokens`` for a loss-optimal one (never reported as a CBS)."""
    p = get_preset(name)
    params, tokens = _positive("params", params), _positive("tokens", tokens)
    loss, compute, seq_len = _positive("loss", loss), _positive("compute", compute), _positive("seq_len", seq_len)
    warnings = []
    if p.variable == "params":
        if params is None:
            raise ScalingError(f"law {name} needs --params")
        x = params
    elif p.variable == "loss":
        if loss is None:
            raise ScalingError(f"law {name} needs --loss (nats)")
        x = loss
    else:
        if compute is None:
            if params is None or tokens is None:
                raise ScalingError(f"law {name} needs --compute, or --params and --tokens (C = 6 N D)")
            compute = FLOPS_PER_PARAM_TOKEN * params * tokens
            warnings.append("compute derived as C = 6 N D; DeepSeek count non-embedding FLOPs per token "
                            "times tokens, which differs by the attention term")
        x = compute
    value = float(p.fn(x))
    if p.output_unit == "sequences":
        seq = p.seq_len
        if seq_len is not None and seq_len != seq:
            warnings.append(f"law {name} counts sequences of {seq} tokens, not {seq_len:g}")
        in_seq, in_tokens = value, value * seq
    else:
        seq = seq_len
        in_seq, in_tokens = (None if seq is None else value / seq), value
        if seq is None:
            warnings.append(f"law {name} gives tokens; pass --seq-len for sequences")
    extra = extrapolation({p.variable: x}, {p.variable: p.domain})
    warnings += [f"extrapolation: {n}" for n in extra["notes"]]
    if batch is not None:
        warnings.append("--batch needs S_min and B_noise laws; presets have none (use a fit file)")
    warnings.append(f"law {name} predicts the {p.definition}; no interval was published")
    key = "b_opt" if p.quantity == "b_opt" else "cbs"
    return {key: in_seq, f"{key}_ci": [None, None], f"{key}_tokens": in_tokens, "extrapolation": extra,
            "quantity": p.quantity, "law": p.describe(), p.variable: x, "seq_len": seq, "warnings": warnings,
            "units": {key: f"sequences of {seq} tokens" if seq else "sequences", f"{key}_tokens": "tokens"}}
