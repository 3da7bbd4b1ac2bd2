"""``scaling fit``: laws for CBS, S_min and B_noise over groups, saved as one JSON file.

A fit file holds the laws' form (``power`` or ``offset``, ``laws``), parameters, intervals and
bootstrap draws, the units, the CBS definition used, the groups it was fitted on, the sha256 of
the input table and a leave-one-group-out check (fit without the largest scale, predict it,
store the error). Floats are written with ``repr`` precision, so a reloaded fit predicts exactly
what the fitted one did. The same format holds the B_opt and lr_opt laws of ``scaling optimum``
(``kind: optimum``, ``optimumfit``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scaling.analysis.bootstrap import percentile_interval
from scaling.analysis.cbs import CBSResult
from scaling.analysis.definitions import B_CRIT_DEFINITION, CBS_DEFINITION
from scaling.analysis.laws import FORMS, PowerLaw, check_design, fit_form, law_from_dict, parse_against
from scaling.errors import ScalingError
from scaling.store import atomic_write_json, read_json

FORMAT = "scaling.fit/1"
QUANTITIES = {"cbs": "sequences", "s_min": "steps", "b_noise": "sequences"}
EXCLUDING_FLAG = "b_noise_at_bound"  # groups whose B_noise fit ran to its search bound


@dataclass(frozen=True)
class LawFit:
    """Laws of ``cbs``, ``s_min`` and ``b_noise`` against ``variables`` plus their provenance."""

    variables: tuple
    laws: dict
    meta: dict = field(default_factory=dict)

    @property
    def cbs(self) -> PowerLaw:
        return self.laws["cbs"]

    @property
    def kind(self) -> str:
        """``cbs`` (CBS, S_min, B_noise laws) or ``optimum`` (B_opt, lr_opt laws)."""
        return "optimum" if "b_opt" in self.laws else "cbs"

    def to_dict(self, include_draws: bool = True) -> dict:
        laws = {}
        for q, law in self.laws.items():
            d = law.to_dict()
            if not include_draws:
                d.pop("draws")
            laws[q] = d
        return {"format": FORMAT, "against": list(self.variables), **self.meta, "laws": laws}

    def save(self, path: "str | os.PathLike") -> None:
        atomic_write_json(path, self.to_dict())


def _design_values(groups, variables):
    return np.array([[getattr(g, v) for v in variables] for g in groups], float)


def leave_one_out(groups, variables, quantities, method, confidence, rng, form: str = "power") -> dict:
    """Fit each quantity's law without the groups at the largest scale and predict them there.

    ``quantities`` maps a name to ``(value, draws)``: functions of a group giving its measured
    value and its bootstrap draws. Groups need ``params`` and ``tokens``. ``predicted_ci`` is the
    law's interval; ``inside_interval`` asks whether the measured value lies inside ``check_ci``,
    the law's interval widened by the held-out group's own measurement uncertainty.
    """
    scale = np.array([np.prod([getattr(g, v) for v in variables]) for g in groups])
    held = [g for g, s in zip(groups, scale) if np.isclose(s, scale.max(), rtol=1e-12)]
    rest = [g for g, s in zip(groups, scale) if not np.isclose(s, scale.max(), rtol=1e-12)]
    X = _design_values(rest, variables)
    try:
        check_design(np.log(X) if len(X) else np.zeros((0, len(variables))), variables,
                     "remaining groups")
        laws = {q: fit_form(form, q, variables, X, np.array([value(g) for g in rest]),
                            np.column_stack([draws(g) for g in rest]), method, confidence, rng)
                for q, (value, draws) in quantities.items()}
    except ScalingError as e:
        return {"done": False, "reason": str(e)}
    out = []
    for q, law in laws.items():
        value, draws = quantities[q]
        for g in held:
            values = {v: getattr(g, v) for v in variables}
            pred, measured = law.value(values), value(g)
            pred_draws = law.value_draws(values, rng)
            lo, hi = percentile_interval(pred_draws, confidence)
            # the check compares like with like: the law's draws times the held-out group's own
            # measurement noise (its bootstrap draws about its value), independent of the fit
            own = np.asarray(draws(g), float) / measured
            c_lo, c_hi = percentile_interval(pred_draws * rng.permutation(np.resize(own, len(pred_draws))),
                                             confidence)
            out.append({"quantity": q, "params": g.params, "tokens": g.tokens, "measured": measured,
                        "predicted": pred, "predicted_ci": [float(lo), float(hi)],
                        "check_ci": [float(c_lo), float(c_hi)],
                        "relative_error": pred / measured - 1.0, "log_error": float(np.log(pred / measured)),
                        "inside_interval": bool(c_lo <= measured <= c_hi)})
    return {"done": True, "held_out": out, "fitted_on": len(rest)}


def fit_law(result: CBSResult, against="params", *, method: str = "lstsq", seed: int = 0,
            form: str = "power") -> LawFit:
    """Laws of CBS, S_min and B_noise against ``against`` (params, tokens or both).

    ``form``: ``power`` (log y linear in log x) or ``offset`` (y = y0 + c x^a, ``laws``). Uses the
    per-group bootstrap draws in ``result`` (paired across quantities). Groups whose B_noise ran
    to its search bound are left out and named in the warnings. A joint fit on collinear groups
    is refused (ScalingError).
    """
    if form not in FORMS:
        raise ScalingError(f"unknown law form {form!r}; expected one of {', '.join(FORMS)}")
    variables = parse_against(against)
    confidence = result.confidence
    groups = [g for g in result.groups if EXCLUDING_FLAG not in g.flags]
    warnings = [f"group params={g.params:.6g} tokens={g.tokens:.6g} left out of the laws: B_noise at "
                f"its search bound" for g in result.groups if EXCLUDING_FLAG in g.flags]
    X = _design_values(groups, variables)
    check_design(np.log(X) if len(X) else np.zeros((0, len(variables))), variables)
    rng = np.random.default_rng(seed)
    laws = {}
    for q, unit in QUANTITIES.items():
        y = np.array([getattr(g, q) for g in groups])
        draws = np.column_stack([g.draws[q] for g in groups])
        laws[q] = fit_form(form, q, variables, X, y, draws, method, confidence, rng, unit=unit)
    logo = leave_one_out(groups, variables, {"cbs": (lambda g: g.cbs, lambda g: g.draws["cbs"])}, method,
                         confidence, rng, form)
    if logo["done"]:
        for h in logo["held_out"]:
            if not h["inside_interval"]:
                warnings.append(f"leave-one-out: the law fitted without the largest scale predicts "
                                f"CBS {h['predicted']:.4g} there, measured {h['measured']:.4g} lies "
                                f"outside its interval")
    seqs = {g.seq_len for g in groups}
    refs = sorted({g.reference_batch for g in groups})
    if len(seqs) > 1:
        warnings.append("groups have different seq_len; CBS in tokens is not predicted")
    meta = {
        "cbs_definition": CBS_DEFINITION, "b_crit_definition": B_CRIT_DEFINITION,
        "overhead": result.overhead, "step_model": result.model,
        "reference_batch": refs[0] if len(refs) == 1 else refs,
        "seq_len": seqs.pop() if len(seqs) == 1 else None,
        "units": {"cbs": "sequences", "cbs_tokens": "tokens (cbs x seq_len)", "s_min": "steps",
                  "b_noise": "sequences", "params": "as in the input table",
                  "tokens": "as in the input table"},
        "form": form, "method": method, "confidence": confidence,
        "n_resamples": int(laws["cbs"].draws.shape[0]), "seed": seed,
        "input": {"source": result.source, "sha256": result.sha256},
        "groups": [{"params": g.params, "tokens": g.tokens, "cbs": g.cbs, "cbs_ci": list(g.cbs_ci),
                    "s_min": g.s_min, "b_noise": g.b_noise, "reference_batch": g.reference_batch,
                    "used": EXCLUDING_FLAG not in g.flags, "flags": list(g.flags)} for g in result.groups],
        "leave_one_out": logo, "warnings": warnings,
    }
    return LawFit(variables=variables, laws=laws, meta=meta)


def load_law(path: "str | os.PathLike") -> LawFit:
    """Reload a fit file written by ``LawFit.save`` (ScalingError if missing or malformed)."""
    path = Path(path)
    try:
        d = read_json(path)
    except FileNotFoundError:
        raise ScalingError(f"fit file not found: {path}") from None
    except (OSError, ValueError) as e:
        raise ScalingError(f"cannot read fit file {path}: {e}") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ScalingError(f"{path} is not a scaling fit file (format {FORMAT})")
    try:
        variables = tuple(d["against"])
        laws = {q: law_from_dict(v) for q, v in d["laws"].items()}
    except (KeyError, TypeError, AttributeError) as e:
        raise ScalingError(f"malformed fit file {path}: missing {e}") from None
    if "cbs" not in laws and "b_opt" not in laws:
        raise ScalingError(f"fit file {path} has neither a CBS law nor a B_opt law")
    meta = {k: v for k, v in d.items() if k not in ("format", "against", "laws")}
    return LawFit(variables=variables, laws=laws, meta=meta)
