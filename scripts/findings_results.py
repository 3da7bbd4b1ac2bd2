"""Turn the findings study's run records into its shipped results: steps tables, fits, the findings table.

    python scripts/findings_results.py        # runs/findings{,_schedules,_schedules_own,_tuning} -> runs/, fits/

The study (issue 16; grids in runs/grids/findings*.yaml, write-up in docs/findings.md) measures
the five claims of Zhang et al. 2024 about the critical batch size. From the run records alone
(no training), this writes, each file atomically:

- ``runs/<sweep>/steps.csv`` for the four sweeps             (``scaling steps <sweep>``)
- ``fits/findings_cbs.json``: every group of ``runs/findings`` (``scaling cbs``)
- ``fits/findings_cbs_vs_tokens.json``: d24-L2 at five data sizes, two seeds (the groups of
  ``fig_cbs_vs_data_size``)
- ``fits/findings_cbs_vs_params.json``: every model shape at its data size closest to 20 tokens per
  parameter (``scaling.plots.sources.chinchilla_groups``, the groups of ``fig_cbs_vs_model_size``)
- ``fits/findings_cbs_vs_params_fixed_tokens.json``: the 2-layer models at D = 1,105,920
- ``fits/findings_cbs_joint.json``: every group of the 2-layer models
  (the four laws are fitted on groups of the whole ``runs/findings`` table, its CBS and bootstrap
  draws in ``fits/findings_cbs.json``, so the figures drawn from that sweep find these files;
  ``scaling fit --where`` bootstraps the selected table instead: same points, other draws)
- ``fits/findings_schedules_cbs.json`` (``runs/findings_schedules`` and ``_schedules_own``),
  ``fits/findings_tuning_cbs.json``: each configuration's CBS (``scaling cbs <sweep> --where
  model=NAME``) and its ratio to the baseline's
- ``fits/findings_summary.json``: the findings table (claim, Zhang et al.'s number where they give
  one, ours with its 95% interval, verdict) and the study's cost,

and prints the findings table as Markdown (the README's). A claim whose groups are not all
measured yet is reported as pending, naming what is missing. Bootstrap seed and resamples are
the analysis defaults, so a rerun on the same records writes the same numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Callable, Optional

from scaling import rundir
from scaling.analysis import critical_batch_sizes, fit_law
from scaling.analysis.compare import cbs_ratio
from scaling.analysis.steps_table import group_matches, select_records, table_from_records
from scaling.errors import ScalingError
from scaling.plots.sources import CHINCHILLA_TOKENS_PER_PARAM, chinchilla_groups  # D ~ 20 N (Hoffmann et al. 2022)
from scaling.store import atomic_write_text, to_json
from scaling.sweep import steps_rows, write_steps_csv
from scaling.sweep.export import table_sha256
from scaling.sweep.records import read_sweep

MAIN, SCHEDULES, TUNING = "findings", "findings_schedules", "findings_tuning"
SCHEDULES_OWN = "findings_schedules_own"  # cosine and WSD again, each budget from its own needs
DATA_MODEL = "d24-L2"                                    # item 2: data size at one model size
WIDTH_MODELS = ("d24-L2", "d32-L2", "d48-L2", "d72-L2")  # item 1: 2-layer models grown in width
FIXED_TOKENS = 1105920                                   # item 3: model size at one data size
WIDTH_DEPTH_PAIRS = (("d30-L2", "d24-L3"), ("d42-L2", "d24-L6"))  # item 4: (width-, depth-scaled)
BASELINE = "d24-L2-constant-ewa"                         # items 5 and 6 compare against it
SCHEDULE_MODELS = ("d24-L2-constant-ewa", "d24-L2-constant", "d24-L2-cosine", "d24-L2-wsd")
OWN_MODELS = ("d24-L2-cosine-own", "d24-L2-wsd-own")
OWN_SUFFIX = "-own"
MOMENTUM_MODELS = {"d24-L2-beta1-0.8": 0.8, BASELINE: 0.9, "d24-L2-beta1-0.95": 0.95}
FIXED_LR_MODEL = "d24-L2-fixed-lr"
# Zhang et al. 2024 (arXiv:2410.21676): B* ~ N^0.47 at Chinchilla-optimal D = 20 N (their
# Fig. 1 law, scaling.analysis.presets.ZHANG_A), and the same exponent read as data-size scaling.
ZHANG_EXPONENT = 0.47
# "alike" when the 95% interval of a CBS ratio holds 1 and lies within [1/ALIKE_BOUND, ALIKE_BOUND];
# an interval holding 1 but wider than that cannot tell the two apart at this scale.
ALIKE_BOUND = 2.0
SMALLEST_BATCH_MULTIPLE = 4.0  # the aim: CBS at least 4x the smallest batch tried
REFERENCE_BATCH = 1.0          # every grid of the study: reference_batch 1, the smallest batch tried
UNFINISHED = ("pending", "running")


def _rows(runs: Path, name: str) -> list:
    sweep = runs / name
    if not sweep.is_dir():
        return []
    rows = steps_rows(sweep)
    if rows:
        write_steps_csv(rows, sweep / "steps.csv")
    return rows


def _finished(rows: list) -> tuple:
    """(rows of the groups whose runs have all finished, the (model, D) of the others): a group
    whose search still runs has no CBS yet."""
    running = {(r["model"], r["tokens"]) for r in rows if r["status"] in UNFINISHED}
    return [r for r in rows if (r["model"], r["tokens"]) not in running], sorted(running)


def _cbs(rows: list, sha256: str = ""):
    """Definition-1 CBS of the rows' groups, linear scaling from the study's B_ref = 1 (the
    batch its targets come from; a group whose B = 1 is not a data point uses the fitted S(1)).
    ``sha256`` names the input table (default: the rows' own hash)."""
    return critical_batch_sizes(table_from_records(rows, "", sha256), reference_batch=REFERENCE_BATCH)


def _late(waiting: list, models=None, where: Optional[dict] = None) -> list:
    """The unfinished groups (``model@D``) of a family: ``models`` (all when None), ``where`` on
    (params, tokens)."""
    return sorted({f"{r['model']}@D{r['tokens']}" for r in waiting if (models is None or r["model"] in set(models))
                   and group_matches(float(r["params"]), float(r["tokens"]), where or {})})


def _law(everything, keep: Callable, against: str, fits: Path, name: str, late=()) -> dict:
    """Fit CBS ~ ``against`` over the groups ``keep`` selects from ``everything`` (the whole
    table's CBS and bootstrap draws, as the figures read them, so ``fig_cbs_vs_*`` find this fit
    file); a dict for the summary. Pending while a group of the family (``late``) has not finished."""
    if late:
        return {"pending": f"waiting for {', '.join(late)}"}
    try:
        fit = fit_law(dataclasses.replace(everything, groups=tuple(keep(everything.groups))), against)
    except ScalingError as e:
        return {"pending": str(e)}
    fit.save(fits / f"{name}.json")
    law = fit.cbs
    out = {"file": f"fits/{name}.json", "groups": [[g["params"], g["tokens"]] for g in fit.meta["groups"]]}
    for v in fit.variables:
        out[f"a_{v}"] = law.exponents[v]
        out[f"a_{v}_ci"] = list(law.intervals()[f"a_{v}"])
    out["leave_one_out"] = fit.meta.get("leave_one_out", {}).get("held_out", [])
    return out


def _per_model(rows: list, models) -> dict:
    """Each configuration's one group (``--where model=NAME``), or why it has none yet."""
    out = {}
    rows, running = _finished(rows)
    for m in models:
        if any(model == m for model, _ in running):
            out[m] = "its runs have not all finished"
            continue
        try:
            (out[m],) = _cbs(select_records(rows, {"model": m})).groups if rows else ("no runs",)
        except ScalingError as e:
            out[m] = str(e)
    return out


def _cost(runs: Path, names) -> dict:
    """What the study spent: tokens trained, the runs' own wall time (worker-hours on this machine's
    cores), the most epochs any run read of the corpus, and the runs by outcome."""
    tokens = seconds = epochs = 0.0
    outcomes: Counter = Counter()
    for name in names:
        if not (runs / name).is_dir():
            continue
        for rec in read_sweep(runs / name).runs:
            s = rec.summary or {}
            tokens += float(s.get("final_tokens") or 0)
            seconds += float(s.get("wall_time_s") or 0)
            epochs = max(epochs, float(s.get("epochs") or 0))
            outcomes[(s.get("censored_by") and f"censored ({s['censored_by']})") or rec.state] += 1
    return {"tokens_trained": tokens, "run_hours": seconds / 3600, "max_epochs": epochs,
            "runs": dict(sorted(outcomes.items()))}


def _group_dict(g) -> dict:
    return {"params": g.params, "tokens": g.tokens, "seq_len": g.seq_len, "cbs": g.cbs, "cbs_ci": list(g.cbs_ci),
            "b_noise_ci": list(g.b_noise_ci),
            "reference_batch": g.reference_batch, "b_noise": g.b_noise, "target_loss": g.target_loss,
            "batch_sizes": list(g.batch_sizes), "steps": list(g.steps)}


def _ratios(groups: dict, pairs) -> dict:
    out = {}
    for a, b in pairs:
        ga, gb = groups.get(a), groups.get(b)
        if isinstance(ga, str) or isinstance(gb, str) or ga is None or gb is None:
            missing, why = (a, ga) if not hasattr(ga, "cbs") else (b, gb)
            out[f"{a}/{b}"] = {"pending": f"{missing} not measured ({why or 'no runs'})"}
            continue
        out[f"{a}/{b}"] = cbs_ratio(ga, gb, a_name=a, b_name=b).to_dict()
    return out


def _alike(ratio: dict) -> str:
    if "pending" in ratio:
        return ratio["pending"]
    lo, hi = ratio["ci"]
    if lo <= 1.0 <= hi:
        return "agrees" if 1 / ALIKE_BOUND <= lo and hi <= ALIKE_BOUND else "cannot tell at this scale"
    return "disagrees"


def _past_budget(sweep: Path, rows: list, model: str) -> list:
    """Batch sizes where ``model``'s fastest run reached the target only after its decay horizon
    (``optim.horizon_tokens``), i.e. at the schedule's floor lr: the plan's budget was short."""
    out = []
    for r in rows:
        if r.get("model") != model or r.get("status") != "done" or r.get("best_lr") != r.get("lr"):
            continue
        config = (rundir.read_config(sweep / r["run_id"]) or {}).get("config", {})
        horizon = (config.get("optim") or {}).get("horizon_tokens")
        tokens = float(r["steps"]) * float(r["batch_size"]) * float(r["seq_len"])
        if horizon is not None and config["optim"].get("schedule") != "constant" and tokens > horizon:
            out.append(int(float(r["batch_size"])))
    return sorted(set(out))


def _as_well(ratio: dict, other: str, past: list) -> str:
    """Verdict on "constant lr + EWA does as well as ``other``" from CBS(constant-ewa) / CBS(other)."""
    if "pending" in ratio:
        return ratio["pending"]
    lo, hi = ratio["ci"]
    plan = "its own needs in the first plan" if other.endswith(OWN_SUFFIX) else "constant + EWA's needs"
    note = (f" (budgets planned from {plan}; {other} needed more than its budget at "
            f"B = {', '.join(map(str, past))})") if past else ""
    if lo > 1.0:
        return "agrees: constant + EWA's CBS is the larger" + note
    if hi < 1.0:
        return f"disagrees: {other}'s CBS is the larger" + note
    return _alike(ratio) + note


def _fmt_ci(x, ci, digits=2) -> str:
    return f"{x:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def _grows(ci) -> str:
    """Verdict on a growth law from its exponent's interval: the sign, then Zhang et al.'s value."""
    lo, hi = ci
    if lo <= 0:
        return "cannot tell at this scale" if hi > 0 else "disagrees: it shrinks"
    if lo <= ZHANG_EXPONENT <= hi:
        return f"agrees ({ZHANG_EXPONENT} is inside our interval)"
    return (f"agrees that it grows; disagrees on the exponent ({ZHANG_EXPONENT} is outside our interval, "
            f"ours is {'steeper' if lo > ZHANG_EXPONENT else 'shallower'})")


def _little(fixed_ci, joint_ci, joint_d_ci) -> str:
    """Verdict on "N matters little at fixed D" from the N exponent at one D and in the joint fit
    (whose D exponent says what "little" is measured against)."""
    holds_zero = [lo <= 0 <= hi for lo, hi in (fixed_ci, joint_ci)]
    if all(holds_zero):
        return "agrees"
    if max(abs(joint_ci[0]), abs(joint_ci[1])) >= joint_d_ci[0]:
        return "disagrees"
    which = "the joint fit's" if not holds_zero[1] else "the fixed-D law's"
    lo, hi = joint_ci if not holds_zero[1] else fixed_ci
    return (f"agrees that D dominates; but the small N effect is measurable and "
            f"{'negative' if hi < 0 else 'positive'} ({which} interval excludes 0)")


def claims(laws: dict, schedules: dict, tuning: dict, width_depth: dict) -> list:
    """The findings table: one row per claim, with Zhang et al.'s number, ours and a verdict."""
    rows = []
    d = laws["cbs_vs_tokens"]
    if "pending" in d:
        rows.append(("CBS grows with data size D (at fixed N)", "D^0.47", "pending", d["pending"]))
    else:
        rows.append(("CBS grows with data size D (at fixed N)", f"D^{ZHANG_EXPONENT}",
                     f"a_D = {_fmt_ci(d['a_tokens'], d['a_tokens_ci'])}", _grows(d["a_tokens_ci"])))
    n, j = laws["cbs_vs_params_fixed_tokens"], laws["cbs_joint"]
    if "pending" in n or "pending" in j:
        rows.append(("Model size N matters little at fixed D", "~0 (qualitative)", "pending",
                     n.get("pending") or j["pending"]))
    else:
        rows.append(("Model size N matters little at fixed D", "~0 (qualitative)",
                     f"a_N = {_fmt_ci(n['a_params'], n['a_params_ci'])} at D = {FIXED_TOKENS:,}; joint fit "
                     f"a_N = {_fmt_ci(j['a_params'], j['a_params_ci'])}, a_D = {_fmt_ci(j['a_tokens'], j['a_tokens_ci'])}",
                     _little(n["a_params_ci"], j["a_params_ci"], j["a_tokens_ci"])))
    c = laws["cbs_vs_params"]
    if "pending" in c:
        rows.append(("CBS at D = 20 N grows as N^a", f"N^{ZHANG_EXPONENT}", "pending", c["pending"]))
    else:
        rows.append(("CBS at D = 20 N grows as N^a", f"N^{ZHANG_EXPONENT}",
                     f"a = {_fmt_ci(c['a_params'], c['a_params_ci'])}", _grows(c["a_params_ci"])))
    for key, r in schedules["ratios"].items():
        other = key.split("/")[1].replace("d24-L2-", "")
        what = other[:-len(OWN_SUFFIX)] + ", budgets from its own needs" if other.endswith(OWN_SUFFIX) else other
        ours = f"CBS ratio constant-ewa / {other} = {_fmt_ci(r['ratio'], r['ci'])}" if "pending" not in r else "pending"
        rows.append((f"Constant lr + EWA does as well as {what}", "as well (qualitative)", ours,
                     _as_well(r, other, schedules["past_budget"].get(f"d24-L2-{other}", []))))
    for key, r in width_depth.items():
        ours = f"CBS ratio {key} = {_fmt_ci(r['ratio'], r['ci'])}" if "pending" not in r else "pending"
        rows.append((f"Width and depth scaling behave alike ({key.replace('/', ' vs ')})", "alike (qualitative)",
                     ours, _alike(r)))
    f = tuning["ratios"].get(f"{FIXED_LR_MODEL}/{BASELINE}", {"pending": "not measured"})
    if "pending" in f:
        rows.append(("Retuning the lr at each batch size matters", "matters (qualitative)", "pending", f["pending"]))
    else:
        rows.append(("Retuning the lr at each batch size matters", "matters (qualitative)",
                     f"CBS ratio fixed lr / retuned = {_fmt_ci(f['ratio'], f['ci'])}",
                     "agrees" if f["ci"][1] < 1.0 else ("disagrees" if f["ci"][0] > 1.0 else "cannot tell at this scale")))
    for key, r in tuning["ratios"].items():
        if key.startswith(FIXED_LR_MODEL):
            continue
        a = key.split("/")[0].replace("d24-L2-", "")
        ours = "pending" if "pending" in r else f"CBS ratio {a} / beta1-0.9 = {_fmt_ci(r['ratio'], r['ci'])}"
        verdict = r["pending"] if "pending" in r else ("matters" if not r["includes_one"] else "no difference measured")
        rows.append((f"Momentum matters ({a} against 0.9)", "matters (qualitative)", ours, verdict))
    return [dict(zip(("claim", "zhang2024", "ours", "verdict"), r)) for r in rows]


def groups_markdown(groups: list) -> str:
    """The per-group table of docs/findings.md (CBS and B_noise in sequences of 64 bytes)."""
    lines = ["| model | N | D | D/N | L\\* | CBS [95%] | CBS / B_ref | B_noise [95%] | batch sizes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for g in groups:
        lines.append(f"| {', '.join(g['model'])} | {g['params']:,.0f} | {g['tokens']:,.0f} | {g['tokens'] / g['params']:.0f} "
                     f"| {g['target_loss']:.3f} | {_fmt_ci(g['cbs'], g['cbs_ci'], 1)} | {g['cbs'] / g['reference_batch']:.1f} "
                     f"| {_fmt_ci(g['b_noise'], g['b_noise_ci'], 1)} | {', '.join(f'{b:g}' for b in g['batch_sizes'])} |")
    return "\n".join(lines)


def configurations_markdown(schedules: dict, tuning: dict) -> str:
    """The per-configuration table of docs/findings.md: each configuration's CBS and the tokens
    each batch size needed to reach its own L* at its best lr, as a multiple of D."""
    lines = ["| configuration | sweep | L\\* | CBS [95%] | B_noise [95%] | tokens to L\\* / D at B = 1, 2, 4, ... |",
             "|---|---|---|---|---|---|"]
    sweeps = {**{m: SCHEDULES for m in SCHEDULE_MODELS}, **{m: SCHEDULES_OWN for m in OWN_MODELS}}
    configs = {**schedules["configurations"], **{m: g for m, g in tuning["configurations"].items() if m != BASELINE}}
    for m, g in configs.items():
        if "pending" in g:
            lines.append(f"| {m} | {sweeps.get(m, TUNING)} | - | pending: {g['pending']} | - | - |")
            continue
        needs = ", ".join(f"{s * b * g['seq_len'] / g['tokens']:.2f}" for b, s in zip(g["batch_sizes"], g["steps"]))
        lines.append(f"| {m} | {sweeps.get(m, TUNING)} | {g['target_loss']:.3f} | {_fmt_ci(g['cbs'], g['cbs_ci'], 1)} "
                     f"| {_fmt_ci(g['b_noise'], g['b_noise_ci'], 1)} | {needs} |")
    return "\n".join(lines)


def markdown(table: list) -> str:
    lines = ["| claim | Zhang et al. 2024 | ours (95% interval) | verdict |", "|---|---|---|---|"]
    lines += [f"| {r['claim']} | {r['zhang2024']} | {r['ours']} | {r['verdict']} |" for r in table]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", default="runs", help="directory holding the three sweeps (default runs/)")
    p.add_argument("--fits", default="fits", help="output directory for the fit files (default fits/)")
    a = p.parse_args(argv)
    runs, fits = Path(a.runs), Path(a.fits)
    try:
        rows = {name: _rows(runs, name) for name in (MAIN, SCHEDULES, SCHEDULES_OWN, TUNING)}
        if not rows[MAIN]:
            raise ScalingError(f"{runs / MAIN}: no runs")
        fits.mkdir(parents=True, exist_ok=True)
        main_rows, unfinished = _finished(rows[MAIN])
        waiting = [r for r in rows[MAIN] if r["status"] in UNFINISHED]
        # every group finished: this is the table of runs/findings/steps.csv, named by its hash as
        # `scaling cbs` and the figures name it (so they find the fit files below)
        everything = _cbs(main_rows, "" if unfinished else table_sha256(runs / MAIN / "steps.csv"))
        atomic_write_text(fits / "findings_cbs.json", to_json(everything.to_dict()) + "\n")
        params_of = {r["model"]: float(r["params"]) for r in main_rows}

        def of(models):
            return lambda groups: [g for g in groups if g.params in {params_of.get(m) for m in models}]

        laws = {
            "cbs_vs_tokens": _law(everything, of([DATA_MODEL]), "tokens", fits, "findings_cbs_vs_tokens",
                                  _late(waiting, [DATA_MODEL])),
            "cbs_vs_params": _law(everything, chinchilla_groups, "params", fits, "findings_cbs_vs_params",
                                  _late(waiting, None, {"tokens_per_param": CHINCHILLA_TOKENS_PER_PARAM})),
            "cbs_vs_params_fixed_tokens": _law(
                everything, lambda groups: [g for g in of(WIDTH_MODELS)(groups) if g.tokens == FIXED_TOKENS],
                "params", fits, "findings_cbs_vs_params_fixed_tokens",
                _late(waiting, WIDTH_MODELS, {"tokens": FIXED_TOKENS})),
            "cbs_joint": _law(everything, of(WIDTH_MODELS), "params,tokens", fits, "findings_cbs_joint",
                              _late(waiting, WIDTH_MODELS)),
        }
        by_model = {}
        for g in everything.groups:
            for m, n in params_of.items():
                if n == g.params:
                    by_model.setdefault(m, []).append(g)
        wd_groups = {m: (gs[0] if len(gs) == 1 else f"{len(gs)} groups") for m, gs in by_model.items()}
        for m, _ in unfinished:
            wd_groups.setdefault(m, "its runs have not all finished")
        width_depth = _ratios(wd_groups, WIDTH_DEPTH_PAIRS)
        sched = {**_per_model(rows[SCHEDULES], SCHEDULE_MODELS), **_per_model(rows[SCHEDULES_OWN], OWN_MODELS)}
        tune = _per_model(rows[TUNING], [m for m in MOMENTUM_MODELS if m != BASELINE] + [FIXED_LR_MODEL])
        tune[BASELINE] = sched.get(BASELINE, "not measured")
        schedules = {"configurations": {m: (_group_dict(g) if hasattr(g, "cbs") else {"pending": g})
                                        for m, g in sched.items()},
                     "ratios": _ratios(sched, [(BASELINE, m) for m in SCHEDULE_MODELS + OWN_MODELS if m != BASELINE]),
                     "past_budget": {**{m: _past_budget(runs / SCHEDULES, rows[SCHEDULES], m) for m in SCHEDULE_MODELS},
                                     **{m: _past_budget(runs / SCHEDULES_OWN, rows[SCHEDULES_OWN], m)
                                        for m in OWN_MODELS}}}
        tuning = {"configurations": {m: (_group_dict(g) if hasattr(g, "cbs") else {"pending": g})
                                     for m, g in tune.items()},
                  "ratios": _ratios(tune, [(m, BASELINE) for m in tune if m != BASELINE])}
        atomic_write_text(fits / "findings_schedules_cbs.json", to_json(schedules) + "\n")
        atomic_write_text(fits / "findings_tuning_cbs.json", to_json(tuning) + "\n")
        table = claims(laws, schedules, tuning, width_depth)
        multiples = [g.cbs / REFERENCE_BATCH for g in everything.groups]
        summary = {"claims": table, "laws": laws, "width_depth": width_depth,
                   "groups": [{**_group_dict(g), "model": [m for m, n in params_of.items() if n == g.params]}
                              for g in everything.groups],
                   "groups_at_least_4x_smallest_batch": sum(m >= SMALLEST_BATCH_MULTIPLE for m in multiples),
                   "groups_measured": len(multiples), "cost": _cost(runs, rows),
                   "groups_unfinished": [f"{m}@D{d}" for m, d in unfinished]}
        atomic_write_text(fits / "findings_summary.json", to_json(summary) + "\n")
    except ScalingError as e:
        print(f"findings_results: error: {e}", file=sys.stderr)
        return 2
    print(markdown(table))
    print()
    print(groups_markdown(summary["groups"]))
    print()
    print(configurations_markdown(schedules, tuning))
    cost = summary["cost"]
    if unfinished:
        print(f"\nnot finished yet: {', '.join(summary['groups_unfinished'])}")
    print(f"\n{summary['groups_at_least_4x_smallest_batch']} of {summary['groups_measured']} groups have a CBS "
          f"at least {SMALLEST_BATCH_MULTIPLE:g}x their smallest batch. Cost: {cost['tokens_trained'] / 1e6:.0f}M "
          f"tokens, {cost['run_hours']:.1f} run-hours, at most {cost['max_epochs']:.2f} epochs of the corpus; runs: "
          + ", ".join(f"{n} {s}" for s, n in cost["runs"].items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
