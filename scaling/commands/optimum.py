"""``scaling optimum LOSSES.csv [--against ...] [-o FIT.json]``: B_opt and lr_opt per group from a loss
grid, and their laws (mirrors ``scaling.analysis.optimum.optima(load_losses(LOSSES))`` and
``scaling.analysis.optimumfit.fit_optimum_laws``)."""

from __future__ import annotations

HELP = "loss-optimal batch size B_opt and learning rate lr_opt per (params, tokens) group from a loss grid"


def add_arguments(p) -> None:
    from scaling.analysis.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED
    from scaling.analysis.laws import FORMS, METHODS
    from scaling.analysis.optimum import DEFAULT_BAND, DEFAULT_FIT_WINDOW

    p.add_argument("losses", metavar="LOSSES.csv",
                   help="loss grid: params,tokens,batch_size,lr,loss[,seq_len,seed,status]")
    p.add_argument("--against", default=None, metavar="VARS",
                   help="also fit laws B_opt(N, D) and lr_opt(N, D) against params, tokens or params,tokens")
    p.add_argument("-o", "--output", default=None, metavar="FIT.json",
                   help="write the laws' fit file here (needs --against; `scaling predict` reads it)")
    p.add_argument("--band", type=float, default=DEFAULT_BAND, metavar="F",
                   help=f"near-optimal band: within this fraction of the minimum loss (default {DEFAULT_BAND:g})")
    p.add_argument("--fit-window", type=float, default=DEFAULT_FIT_WINDOW, metavar="F",
                   help=f"fit the bowl to cells within this fraction of the minimum loss, widened until it holds "
                        f"enough cells (default {DEFAULT_FIT_WINDOW:g})")
    p.add_argument("--keep-edge", action="store_true",
                   help="report an optimum outside the grid (flagged, left out of laws) instead of stopping")
    p.add_argument("--form", choices=FORMS, default="power", help="law form (default power)")
    p.add_argument("--method", choices=METHODS, default="lstsq", help="law fitting loss (default lstsq)")
    p.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES, help="bootstrap resamples")
    p.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE, help="interval level")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="bootstrap seed")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def render(result, fit=None) -> str:
    from scaling.analysis.report import fmt, table

    pct = f"{100 * result.confidence:g}%"
    rows = [[fmt(g.params), fmt(g.tokens), fmt(g.b_opt), fmt(g.b_opt_ci), fmt(g.b_opt_tokens), fmt(g.lr_opt),
             fmt(g.lr_opt_ci), fmt(g.loss_opt, 5), fmt(g.argmin_batch), fmt(g.argmin_lr),
             fmt(g.band["batch_range"]), g.n_fit, g.bootstrap, ",".join(g.flags) or "-"] for g in result.groups]
    lines = [f"B_opt and lr_opt (loss-optimal at fixed params and tokens: minimum of a quadratic in log B, log lr "
             f"fitted near the lowest loss; {pct} bootstrap intervals; band = within {100 * result.band:g}% of the "
             f"minimum). B_opt is not the critical batch size.",
             table(["params", "tokens", "b_opt", f"b_opt {pct}", "b_opt_tokens", "lr_opt", f"lr_opt {pct}",
                    "loss_opt", "argmin B", "argmin lr", "band B", "n_fit", "boot", "flags"], rows)]
    if fit is not None:
        from scaling.commands.fit import render as render_laws

        lines += ["", render_laws(fit)]
    return "\n".join(lines)


def run(args) -> int:
    from scaling.analysis.lossgrid import load_losses
    from scaling.analysis.optimum import optima
    from scaling.analysis.optimumfit import fit_optimum_laws, law_summary
    from scaling.analysis.report import print_warnings
    from scaling.errors import ScalingError
    from scaling.store import to_json

    if args.output and not args.against:
        raise ScalingError("-o writes the laws' fit file; give --against params, tokens or params,tokens")
    result = optima(load_losses(args.losses), band=args.band, window=args.fit_window, n_resamples=args.resamples,
                    confidence=args.confidence, seed=args.seed, keep_edge=args.keep_edge)
    fit = None
    if args.against:
        fit = fit_optimum_laws(result, args.against, method=args.method, seed=args.seed, form=args.form)
        if args.output:
            fit.save(args.output)
    warnings = list(result.warnings) + (list(fit.meta["warnings"]) if fit else [])
    if args.json:
        d = result.to_dict()
        if fit is not None:
            d["laws"] = law_summary(fit)
            d["against"] = list(fit.variables)
            d["leave_one_out"] = fit.meta["leave_one_out"]
            d["output"] = args.output
        d["warnings"] = warnings
        print(to_json(d))
    else:
        print(render(result, fit))
        if args.output:
            print(f"fit written to {args.output}")
        print_warnings("optimum", warnings)
    return 0
