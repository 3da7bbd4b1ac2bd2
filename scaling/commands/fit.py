"""``scaling fit STEPS --against ... [--form power|offset]``: laws of CBS, S_min and B_noise (mirrors
``scaling.analysis.fit_law(critical_batch_sizes(load_steps(STEPS)), against, form=...)``)."""

from __future__ import annotations

HELP = "fit power laws (or offset power laws) of the CBS (and S_min, B_noise) against params, tokens or both"


def add_arguments(p) -> None:
    from scaling.analysis.laws import FORMS, METHODS
    from scaling.commands import cbs

    cbs.add_arguments(p)
    p.add_argument("--against", required=True, metavar="VARS", help="params, tokens or params,tokens")
    p.add_argument("--method", choices=METHODS, default="lstsq", help="law fitting loss (default lstsq)")
    p.add_argument("--form", choices=FORMS, default="power",
                   help="power: y = c x^a; offset: y = y0 + c x^a, y0 >= 0 (default power)")
    p.add_argument("-o", "--output", default=None, metavar="FIT.json", help="write the fit file here")


def render(fit) -> str:
    """The laws of a fit file (any kind, either form) and its leave-one-out check, as text."""
    from scaling.analysis.report import fmt, table

    offset = fit.meta.get("form") == "offset"
    rows = []
    for q, law in fit.laws.items():
        iv = law.intervals()
        rows.append([q, law.unit] + ([fmt(law.y0), fmt(iv["y0"])] if offset else []) + [fmt(law.c), fmt(iv["c"])]
                    + [f"{fmt(law.exponents[v])} {fmt(iv[f'a_{v}'])}" for v in fit.variables]
                    + [fmt(law.tau, 2)])
    first = next(iter(fit.laws.values()))
    pivot = ", ".join(f"{v}={fmt(first.pivot[v])}" for v in fit.variables)
    lines = [f"law: y = {'y0 + ' if offset else ''}c * prod (x / pivot)^a   (pivot {pivot}; "
             f"{100 * first.confidence:g}% intervals)",
             table(["quantity", "unit"] + (["y0", "y0 interval"] if offset else []) + ["c", "c interval"]
                   + [f"a_{v} [interval]" for v in fit.variables] + ["scatter"], rows)]
    logo = fit.meta.get("leave_one_out", {})
    for h in logo.get("held_out", []):
        what = "CBS" if h.get("quantity", "cbs") == "cbs" else h["quantity"]
        lines.append(f"leave-one-out: without params={fmt(h['params'])} tokens={fmt(h['tokens'])} the law "
                     f"predicts {what} {fmt(h['predicted'])} {fmt(h['predicted_ci'])}, measured "
                     f"{fmt(h['measured'])} (error {100 * h['relative_error']:+.1f}%)"
                     + (f": {'inside' if h['inside_interval'] else 'outside'} the check interval "
                        f"{fmt(h['check_ci'])} (the law's, widened by that measurement's own noise)"
                        if "check_ci" in h else ""))
    if logo and not logo.get("done", True):
        lines.append(f"leave-one-out: not done ({logo['reason']})")
    return "\n".join(lines)


def run(args) -> int:
    from scaling.analysis import fit_law
    from scaling.analysis.report import print_warnings
    from scaling.commands.cbs import compute
    from scaling.commands.cbs import render as render_cbs
    from scaling.store import check_output_file, to_json

    if args.output:
        check_output_file(args.output)  # before the bootstrap
    result = compute(args)
    fit = fit_law(result, args.against, method=args.method, seed=args.seed, form=args.form)
    if args.output:
        fit.save(args.output)
    if args.json:
        d = fit.to_dict(include_draws=False)
        d["output"] = args.output
        print(to_json(d))
    else:
        print(render_cbs(result))
        print()
        print(render(fit))
        if args.output:
            print(f"fit written to {args.output}")
        print_warnings("fit", list(result.warnings) + list(fit.meta["warnings"]))
    return 0
