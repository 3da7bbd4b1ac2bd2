"""``scaling status [RUNS]``: counts by state, per-group progress, ETA (mirrors ``scaling.sweep.status``)."""

from __future__ import annotations

HELP = "what is done, running, failed, censored, diverged, pending in a sweep; targets, tokens, ETA"


def add_arguments(p) -> None:
    p.add_argument("runs", nargs="?", default="runs", metavar="RUNS",
                   help="a sweep directory or a directory of sweeps (default runs)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def run(args) -> int:
    from scaling.store import to_json
    from scaling.sweep.status import render, status

    statuses = status(args.runs)
    if not statuses:
        from scaling.errors import ScalingError

        raise ScalingError(f"{args.runs}: no sweep found (a sweep directory holds sweep.json and run directories; "
                           "scaling sweep GRID --out DIR makes one)")
    if args.json:
        print(to_json({"sweeps": [s.to_dict() for s in statuses]}))
    else:
        print(render(statuses))
    return 0
