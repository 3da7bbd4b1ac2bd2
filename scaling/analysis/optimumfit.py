"""Laws of the loss-optimal batch size and learning rate: B_opt(N, D), lr_opt(N, D).

Power laws log y = log c + sum_k a_k log(x_k / x0_k) (``laws``, the form DeepSeek LLM 2024 and
StepLaw 2025 fit to their optima) of each group's B_opt and lr_opt (``optimum``), with the
two-level bootstrap of ``laws`` fed by each group's own bootstrap draws, and a leave-one-out
check at the largest scale (``fitfile.leave_one_out``). Groups whose optimum lies outside the
grid or has no minimum are left out and named. Saved in the fit-file format of ``fitfile``
(``kind: optimum``) so that ``scaling predict`` reads it.
"""

from __future__ import annotations

import numpy as np

from scaling.analysis.fitfile import LawFit, leave_one_out
from scaling.analysis.laws import FORMS, check_design, fit_form, parse_against
from scaling.analysis.optimum import OPTIMUM_DEFINITION, OptimumResult
from scaling.errors import ScalingError

QUANTITIES = {"b_opt": "sequences", "lr_opt": "learning rate"}
FILL_SEED = 0   # stream that replaces a group's draws without a minimum by valid ones


def _draws(g, q) -> np.ndarray:
    """A group's bootstrap draws of q, resamples without a minimum replaced by valid ones."""
    d = np.asarray(g.draws[q], float)
    bad = ~np.isfinite(d)
    if bad.any():
        d = d.copy()
        d[bad] = np.random.default_rng(FILL_SEED).choice(d[~bad], int(bad.sum()))
    return d


def fit_optimum_laws(result: OptimumResult, against="params,tokens", *, method: str = "lstsq", seed: int = 0,
                     form: str = "power") -> LawFit:
    """Laws of B_opt and lr_opt against ``against`` (params, tokens or both), with intervals."""
    if form not in FORMS:
        raise ScalingError(f"unknown law form {form!r}; expected one of {', '.join(FORMS)}")
    variables = parse_against(against)
    groups = [g for g in result.groups if g.usable]
    warnings = [f"group params={g.params:.6g} tokens={g.tokens:.6g} left out of the laws: "
                f"{', '.join(f for f in g.flags if f != 'argmin_at_edge')}"
                for g in result.groups if not g.usable]
    X = np.array([[getattr(g, v) for v in variables] for g in groups], float)
    check_design(np.log(X) if len(X) else np.zeros((0, len(variables))), variables, "groups with an optimum")
    rng = np.random.default_rng(seed)
    confidence = result.confidence
    laws = {q: fit_form(form, q, variables, X, np.array([getattr(g, q) for g in groups]),
                        np.column_stack([_draws(g, q) for g in groups]), method, confidence, rng, unit=unit)
            for q, unit in QUANTITIES.items()}
    logo = leave_one_out(groups, variables,
                         {q: (lambda g, q=q: getattr(g, q), lambda g, q=q: _draws(g, q)) for q in QUANTITIES},
                         method, confidence, rng, form)
    for h in logo.get("held_out", []):
        if not h["inside_interval"]:
            warnings.append(f"leave-one-out: the {h['quantity']} law fitted without the largest scale predicts "
                            f"{h['predicted']:.4g} there; the measured {h['measured']:.4g} lies outside its interval")
    seqs = {g.seq_len for g in groups}
    meta = {
        "kind": "optimum", "definition": OPTIMUM_DEFINITION, "form": form, "method": method,
        "confidence": confidence, "band": result.band, "n_resamples": int(laws["b_opt"].draws.shape[0]),
        "seed": seed, "seq_len": seqs.pop() if len(seqs) == 1 else None,
        "units": {"b_opt": "sequences", "b_opt_tokens": "tokens (b_opt x seq_len)", "lr_opt": "learning rate",
                  "params": "as in the input table", "tokens": "as in the input table"},
        "input": {"source": result.source, "sha256": result.sha256},
        "groups": [{"params": g.params, "tokens": g.tokens, "b_opt": g.b_opt, "b_opt_ci": list(g.b_opt_ci),
                    "lr_opt": g.lr_opt, "lr_opt_ci": list(g.lr_opt_ci), "used": g.usable, "flags": list(g.flags)}
                   for g in result.groups],
        "leave_one_out": logo, "warnings": warnings,
    }
    if len({g.seq_len for g in groups}) > 1:
        warnings.append("groups have different seq_len; B_opt in tokens is not predicted")
    return LawFit(variables=variables, laws=laws, meta=meta)


def law_summary(fit: LawFit) -> dict:
    """``{"b_opt": {"parameters", "intervals", ...}, "lr_opt": {...}}`` for JSON output (no draws)."""
    out = {}
    for q, law in fit.laws.items():
        d = law.to_dict()
        d.pop("draws")
        out[q] = d
    return out

