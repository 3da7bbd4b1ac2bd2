"""``scaling cbs STEPS``: critical batch size per (params, tokens) group (mirrors
``scaling.analysis.critical_batch_sizes(scaling.sweep.export.load_table(STEPS))``: ``load_steps``
of a CSV, or the steps table of a sweep or runs directory)."""

from __future__ import annotations

HELP = "critical batch size per (params, tokens) group from a steps table (CSV or runs directory)"


def add_arguments(p) -> None:
    from scaling.analysis.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED
    from scaling.analysis.definitions import DEFAULT_OVERHEAD
    from scaling.analysis.stepmodel import MODELS

    p.add_argument("steps", metavar="STEPS", nargs="?", default=None,
                   help="steps table CSV, or a runs directory (or --from-losses)")
    p.add_argument("--reference-batch", type=float, default=None, metavar="B",
                   help="B_ref in sequences (default: the smallest batch of each group)")
    p.add_argument("--overhead", type=float, default=DEFAULT_OVERHEAD, metavar="EPS",
                   help=f"eps of Definition 1 (default {DEFAULT_OVERHEAD})")
    p.add_argument("--model", choices=MODELS, default="hyperbola", help="step model (default hyperbola)")
    p.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES, help="bootstrap resamples")
    p.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE, help="interval level")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="bootstrap seed")
    p.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                   help="only the groups with this params, tokens or tokens_per_param (within 2%%), or "
                        "the rows of one model name (model=NAME, exact); repeatable, e.g. --where "
                        "params=13824 for a data-size law at one model size")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--gns", action="store_true",
                   help="also compare the runs' gradient noise scale B_simple (steps column b_simple) with "
                        "B_noise and the CBS (scaling.analysis.gns_compare.compare_gns)")
    p.add_argument("--from-losses", default=None, metavar="LOSSES.csv",
                   help="read steps to --target-loss off a loss grid at several data sizes (iso-loss; "
                        "scaling.analysis.isoloss) instead of a steps table")
    p.add_argument("--target-loss", type=float, action="append", default=[], metavar="L",
                   help="with --from-losses: the target loss (repeatable: one group per model size and target)")


def compute(args):
    from scaling.commands._isoloss import iso_loss_result

    iso = iso_loss_result(args)  # --from-losses: the iso-loss CBS; None for a steps table
    if iso is not None:
        return iso.cbs
    from scaling.analysis import critical_batch_sizes
    from scaling.analysis.steps_table import parse_where, select_groups
    from scaling.sweep.export import load_table

    where = parse_where(args.where)
    return critical_batch_sizes(select_groups(load_table(args.steps, where=where), where), reference_batch=args.reference_batch,
                                overhead=args.overhead, model=args.model, n_resamples=args.resamples,
                                confidence=args.confidence, seed=args.seed)


def render(result) -> str:
    from scaling.analysis.report import fmt, table

    rows = []
    for g in result.groups:
        rows.append([fmt(g.params), fmt(g.tokens), fmt(g.cbs), fmt(g.cbs_ci), fmt(g.cbs_tokens),
                     fmt(g.cbs_empirical), fmt(g.b_noise), fmt(g.s_min), fmt(g.alpha, 3),
                     fmt(g.reference_batch), len(g.batch_sizes), fmt(g.rms_residual, 2),
                     ",".join(g.flags) or "-"])
    pct = f"{100 * result.confidence:g}%"
    head = (f"CBS (Zhang et al. 2024 Def. 1, overhead {result.overhead:g}, step model {result.model}; "
            f"{pct} bootstrap intervals). B_noise is McCandlish's B_crit, a different quantity.")
    return head + "\n" + table(
        ["params", "tokens", "cbs", f"cbs {pct}", "cbs_tokens", "empirical", "b_noise", "s_min",
         "alpha", "B_ref", "n_B", "rms_log", "flags"], rows)


def run(args) -> int:
    if getattr(args, "from_losses", None):
        from scaling.commands._isoloss import run as run_iso
        return run_iso(args)
    from scaling.analysis.report import print_warnings
    from scaling.store import to_json

    result = compute(args)
    comparison = None
    if args.gns:
        from scaling.analysis.gns_compare import compare_gns
        from scaling.sweep.export import load_records
        comparison = compare_gns(result, load_records(args.steps))
    if args.json:
        d = result.to_dict()
        if comparison is not None:
            d["gns"] = comparison.to_dict()
        print(to_json(d))
    else:
        print(render(result))
        if comparison is not None:
            from scaling.analysis.gns_compare import render as render_gns
            print()
            print(render_gns(comparison))
        print_warnings("cbs", result.warnings)
    return 0
