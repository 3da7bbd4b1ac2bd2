"""``scaling demo``: the demo sweep on the embedded corpus, steps to target, CBS (mirrors ``scaling.sweep.demo``)."""

from __future__ import annotations

HELP = "run the demo sweep (tiny model, embedded corpus, minutes on a CPU) and print S(B) and the CBS"


def add_arguments(p) -> None:
    p.add_argument("--out", default="runs/demo", metavar="DIR", help="sweep directory (default runs/demo)")
    p.add_argument("--grid", default=None, metavar="GRID", help="another grid file (default runs/grids/demo.yaml)")
    p.add_argument("--workers", type=int, default=1, metavar="K", help="worker processes (default 1)")
    p.add_argument("--quiet", action="store_true", help="no per-run lines")


def run(args) -> int:
    from scaling.sweep.demo import demo

    demo(out=args.out, grid=args.grid, workers=args.workers, quiet=args.quiet)
    return 0
