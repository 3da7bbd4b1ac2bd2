"""``scaling predict FIT.json|--law NAME``: CBS (or B_opt and lr_opt) for a new budget (mirrors
``scaling.analysis.predict(load_law(FIT))`` and ``scaling.analysis.predict_preset(NAME)``)."""

from __future__ import annotations

HELP = ("predict the CBS (and steps at a planned batch), or B_opt and lr_opt from an optimum fit, "
        "for a new (params, tokens) budget")


def add_arguments(p) -> None:
    p.add_argument("fit", metavar="FIT.json", nargs="?", default=None, help="fit file from `scaling fit`")
    from scaling.analysis.presets import PRESETS

    p.add_argument("--law", default=None, metavar="NAME",
                   help=f"a published law instead: {', '.join(PRESETS)}")
    p.add_argument("--params", type=float, default=None, metavar="N", help="non-embedding parameters")
    p.add_argument("--tokens", type=float, default=None, metavar="D", help="training tokens")
    p.add_argument("--batch", type=float, default=None, metavar="B",
                   help="planned batch size (sequences): predicted steps and overhead over linear")
    p.add_argument("--reference-batch", type=float, default=None, metavar="B",
                   help="B_ref for the overhead (default: the fit's)")
    p.add_argument("--loss", type=float, default=None, metavar="L", help="target loss in nats (kaplan2020)")
    p.add_argument("--compute", type=float, default=None, metavar="C", help="FLOPs (deepseek2024; default 6ND)")
    p.add_argument("--seq-len", type=float, default=None, help="tokens per sequence (token laws -> sequences)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def render(out: dict) -> str:
    from scaling.analysis.report import fmt

    lines = []
    if "law" in out:
        lines.append(f"law {out['law']['name']}: {out['law']['formula']} ({out['law']['source']})")
    if "b_opt" in out:
        lines.append(f"B_opt (loss-optimal at this D, not the CBS): {fmt(out['b_opt'])} sequences "
                     f"{fmt(out['b_opt_ci'])}; {fmt(out['b_opt_tokens'])} tokens {fmt(out.get('b_opt_tokens_ci'))}")
        if "lr_opt" in out:
            lines.append(f"lr_opt: {fmt(out['lr_opt'])} {fmt(out['lr_opt_ci'])}")
    else:
        lines.append(f"CBS: {fmt(out['cbs'])} sequences {fmt(out['cbs_ci'])}; {fmt(out['cbs_tokens'])} tokens "
                     f"{fmt(out.get('cbs_tokens_ci'))}")
    if "b_noise" in out:
        lines.append(f"B_noise (McCandlish B_crit): {fmt(out['b_noise'])} {fmt(out['b_noise_ci'])}; "
                     f"S_min: {fmt(out['s_min'])} {fmt(out['s_min_ci'])} steps")
    if "batch" in out:
        b = out["batch"]
        lines.append(f"at batch {fmt(b['batch_size'])}: {fmt(b['steps'])} steps {fmt(b['steps_ci'])}; overhead "
                     f"over linear scaling from B_ref {fmt(b['reference_batch'])}: "
                     f"{100 * b['overhead_over_linear']:.1f}% "
                     f"[{100 * b['overhead_over_linear_ci'][0]:.1f}%, {100 * b['overhead_over_linear_ci'][1]:.1f}%]"
                     f"; {'within' if b['within_cbs'] else 'beyond'} the CBS")
    ex = out["extrapolation"]
    for v, e in ex["variables"].items():
        lines.append(f"{v}: {fmt(e['value'])} (fitted {fmt(e['fitted_min'])} .. {fmt(e['fitted_max'])}; "
                     f"{'extrapolates ' + fmt(e['factor'], 3) + 'x' if e['factor'] > 1 else 'inside'})")
    return "\n".join(lines)


def run(args) -> int:
    from scaling.analysis import load_law, predict, predict_preset
    from scaling.analysis.report import print_warnings
    from scaling.errors import ScalingError
    from scaling.store import to_json

    if (args.fit is None) == (args.law is None):
        raise ScalingError("give either a fit file or --law NAME (not both)")
    for flag in ("params", "tokens", "batch", "reference_batch", "loss", "compute", "seq_len"):
        value = getattr(args, flag)
        if value is not None and not value > 0:  # NaN fails too
            raise ScalingError(f"--{flag.replace('_', '-')} must be a positive number, got {value:g}")
    if args.law:
        out = predict_preset(args.law, params=args.params, tokens=args.tokens, loss=args.loss,
                             compute=args.compute, seq_len=args.seq_len, batch=args.batch)
    else:
        out = predict(load_law(args.fit), params=args.params, tokens=args.tokens, batch=args.batch,
                      reference_batch=args.reference_batch)
    if args.json:
        print(to_json(out))
    else:
        print(render(out))
        print_warnings("predict", out["warnings"])
    return 0
