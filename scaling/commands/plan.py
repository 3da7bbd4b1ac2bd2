"""``scaling plan FIT.json|--law NAME --params N --tokens D --chip-flops F --mfu M ...``: steps, chips,
time and cost against batch size (mirrors ``scaling.analysis.planner.plan(law_from_fit(...) or
law_from_preset(...), N, D, Hardware(...))``); ``-o plan.png`` draws the time-versus-cost front."""

from __future__ import annotations

HELP = "steps, chips, wall-clock, accelerator-hours and cost against batch size for a budget, from a law"
FIGURE_SIZE = (5.2, 3.8)


def add_arguments(p) -> None:
    from scaling.analysis.definitions import DEFAULT_OVERHEAD
    from scaling.analysis.planner import DEFAULT_PER_CHIP_BATCH, GRADIENT_BYTES
    from scaling.analysis.presets import PRESETS

    p.add_argument("fit", metavar="FIT.json", nargs="?", default=None,
                   help="fit file from `scaling fit` (step model) or `scaling optimum` (B_opt)")
    p.add_argument("--law", default=None, metavar="NAME", help=f"a published law instead: {', '.join(PRESETS)}")
    p.add_argument("--params", type=float, required=True, metavar="N", help="non-embedding parameters")
    p.add_argument("--tokens", type=float, required=True, metavar="D", help="training tokens")
    p.add_argument("--seq-len", type=float, default=None, metavar="T",
                   help="tokens per sequence (default: the law's)")
    p.add_argument("--chip-flops", type=float, required=True, metavar="F", help="peak FLOP/s of one chip")
    p.add_argument("--mfu", type=float, required=True, metavar="M", help="model FLOPs utilisation, in (0, 1]")
    p.add_argument("--chips-max", type=float, default=None, metavar="K",
                   help="at most this many chips; larger batches accumulate gradients (default: no limit)")
    p.add_argument("--per-chip-batch", type=float, default=DEFAULT_PER_CHIP_BATCH, metavar="b",
                   help=f"sequences one chip holds per micro-step (default {DEFAULT_PER_CHIP_BATCH})")
    p.add_argument("--link-bandwidth", type=float, default=None, metavar="BW",
                   help="bytes/s per chip for the gradient all-reduce (default: communication not counted)")
    p.add_argument("--gradient-bytes", type=float, default=GRADIENT_BYTES, metavar="G",
                   help=f"bytes per gradient value in the all-reduce (default {GRADIENT_BYTES:g})")
    p.add_argument("--price", type=float, default=None, metavar="P", help="price of one accelerator-hour")
    p.add_argument("--within", type=float, default=DEFAULT_OVERHEAD, metavar="EPS",
                   help=f"mark the fastest plan costing at most (1 + EPS) x the cheapest (default {DEFAULT_OVERHEAD})")
    p.add_argument("--batch-sizes", default=None, metavar="LIST",
                   help="comma-separated batch sizes (sequences) instead of powers of two around the CBS")
    p.add_argument("--reference-batch", type=float, default=None, metavar="B",
                   help="B_ref for the overhead (default: the fit's)")
    p.add_argument("--loss", type=float, default=None, metavar="L", help="target loss in nats (kaplan2020)")
    p.add_argument("--compute", type=float, default=None, metavar="C", help="FLOPs (deepseek2024; default 6ND)")
    p.add_argument("-o", "--output", default=None, metavar="plan.png", help="draw the time-versus-cost front here")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _batch_list(text):
    from scaling.errors import ScalingError

    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ScalingError(f"--batch-sizes {text!r}: expected comma-separated numbers") from None


def compute(args):
    from scaling.analysis import load_law
    from scaling.analysis.planner import Hardware, law_from_fit, law_from_preset, plan
    from scaling.errors import ScalingError

    if (args.fit is None) == (args.law is None):
        raise ScalingError("give either a fit file or --law NAME (not both)")
    hw = Hardware(chip_flops=args.chip_flops, mfu=args.mfu, chips_max=args.chips_max,
                  per_chip_batch=args.per_chip_batch, link_bandwidth=args.link_bandwidth, price=args.price,
                  gradient_bytes=args.gradient_bytes).check()
    if args.law:
        law = law_from_preset(args.law, args.params, args.tokens, seq_len=args.seq_len, loss=args.loss,
                              compute=args.compute)
    else:
        law = law_from_fit(load_law(args.fit), args.params, args.tokens, seq_len=args.seq_len,
                           reference_batch=args.reference_batch, name=args.fit)
    batches = _batch_list(args.batch_sizes) if args.batch_sizes else None
    return plan(law, args.params, args.tokens, hw, within=args.within, batch_sizes=batches)


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def render(pl) -> str:
    from scaling.analysis.report import fmt, table

    rows = []
    for r in pl.rows:
        rows.append([fmt(r.batch_size), fmt(r.steps), fmt(r.tokens), r.chips, r.accumulation, fmt(r.step_s),
                     _duration(r.wall_s), fmt(r.accelerator_hours), fmt(r.cost),
                     "-" if r.overhead is None else f"{100 * r.overhead:.1f}%", ",".join(r.marks) or ""])
    head = (f"plan for params {fmt(pl.params)}, tokens {fmt(pl.tokens)}, seq_len {fmt(pl.seq_len)} from {pl.law}: "
            f"CBS {fmt(pl.cbs)}, B_opt {fmt(pl.b_opt)}" + (f", B_crit {fmt(pl.b_crit)}" if pl.b_crit else "")
            + " (sequences)")
    lines = [head, table(["batch", "steps", "tokens", "chips", "accum", "step_s", "wall", "accel_h", "cost",
                          "overhead", "marks"], rows),
             f"fastest: batch {fmt(pl.fastest)}; cheapest: batch {fmt(pl.cheapest)}; fastest within "
             f"{100 * pl.within:g}% of the cheapest cost: batch {fmt(pl.fastest_within)}; "
             f"time-cost front: {', '.join(fmt(b) for b in pl.front)}"]
    lines += [f"cannot plan: {c}" for c in pl.cannot_plan]
    lines += [f"assumes: {a}" for a in pl.assumptions]
    return "\n".join(lines)


def draw(pl, path) -> None:
    """Wall-clock against cost (or accelerator-hours) per batch size, the front, the marked plans."""
    import io

    import numpy as np

    from scaling.plots import style
    from scaling.plots.output import PNG_METADATA
    from scaling.store import atomic_write_bytes

    plt = style.pyplot()
    fig, ax = plt.subplots(figsize=FIGURE_SIZE)
    cost = [r.cost if r.cost is not None else r.accelerator_hours for r in pl.rows]
    wall = [r.wall_s / 3600.0 for r in pl.rows]
    sc = ax.scatter(cost, wall, c=np.log2([r.batch_size for r in pl.rows]), cmap=style.SEQUENTIAL_CMAP, zorder=3)
    front = [(c, w) for c, w, r in zip(cost, wall, pl.rows) if r.batch_size in pl.front]
    ax.plot(*zip(*sorted(front)), "-", color=style.IDEAL_COLOR, lw=1, zorder=2, label="time-cost front")
    for mark, colour in (("cbs", 1), ("b_opt", 2), ("b_crit", 2), ("fastest_within", 0)):
        hits = [(c, w) for c, w, r in zip(cost, wall, pl.rows) if mark in r.marks]
        if hits:
            ax.scatter(*zip(*hits), s=90, facecolors="none", edgecolors=style.color(colour), lw=1.4, zorder=4,
                       label={"cbs": "CBS", "b_opt": "B_opt", "b_crit": "B_crit",
                              "fastest_within": f"fastest within {100 * pl.within:g}% of cheapest"}[mark])
    for c, w, r in zip(cost, wall, pl.rows):
        ax.annotate(style.human(r.batch_size), (c, w), textcoords="offset points", xytext=(4, 3), fontsize=6)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("cost" if pl.hardware.price is not None else "accelerator-hours")
    ax.set_ylabel("wall-clock (hours)")
    ax.set_title(f"N {pl.params:.3g}, D {pl.tokens:.3g}: time vs cost per batch size" +
                 ("" if pl.step_model else " (fixed D; no step model)"))
    fig.colorbar(sc, ax=ax, label="log2 batch size (sequences)")
    ax.legend(loc="best")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata=PNG_METADATA, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def run(args) -> int:
    from scaling.store import to_json

    pl = compute(args)
    if args.output:
        draw(pl, args.output)
    if args.json:
        d = pl.to_dict()
        d["output"] = args.output
        print(to_json(d))
    else:
        print(render(pl))
        if args.output:
            print(f"figure written to {args.output}")
    return 0
