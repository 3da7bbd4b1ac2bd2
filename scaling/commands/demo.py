"""``scaling demo``: the demo sweep on the embedded corpus, steps to target, CBS (mirrors ``scaling.demo.demo``)."""

from __future__ import annotations

HELP = "run the demo sweep (tiny model, embedded corpus, minutes on a CPU) and print S(B) and the CBS"


def add_arguments(p) -> None:
    p.add_argument("--workload", choices=("lm", "nqm"), default="lm",
                   help="lm: a tiny language model (minutes); nqm: the noisy quadratic model (seconds)")
    p.add_argument("--out", default=None, metavar="DIR", help="sweep directory (default runs/demo, or runs/nqm_demo)")
    p.add_argument("--grid", default=None, metavar="GRID", help="another grid file (default runs/grids/demo.yaml)")
    p.add_argument("--workers", type=int, default=None, metavar="K",
                   help="worker processes (default: lm one per CPU core, at most 2; nqm 1)")
    p.add_argument("--quiet", action="store_true", help="no per-run lines")
    p.add_argument("--no-figures", action="store_true", help="do not draw the figures")


def run(args) -> int:
    from scaling.demo import WORKLOAD_GRIDS, default_workers, demo

    grid = args.grid or WORKLOAD_GRIDS[args.workload]
    out = args.out or ("runs/demo" if args.workload == "lm" else "runs/nqm_demo")
    workers = default_workers(args.workload) if args.workers is None else args.workers
    demo(out=out, grid=grid, workers=workers, quiet=args.quiet, figures=not args.no_figures)
    return 0
