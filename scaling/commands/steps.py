"""``scaling steps RUNS -o steps.csv``: the steps-to-target table (mirrors ``scaling.sweep.export.steps_rows``)."""

from __future__ import annotations

HELP = "steps-to-target table (CSV) from a sweep's run directories"


def add_arguments(p) -> None:
    p.add_argument("runs", metavar="RUNS", help="a sweep directory or a directory of sweeps")
    p.add_argument("-o", "--output", default=None, metavar="STEPS.csv",
                   help="write the table here (atomically); default: stdout")


def run(args) -> int:
    import sys

    from scaling.errors import ScalingError
    from scaling.sweep.export import steps_csv, steps_rows, write_steps_csv

    rows = steps_rows(args.runs)
    if not rows:
        raise ScalingError(f"{args.runs}: no runs found")
    if args.output:
        write_steps_csv(rows, args.output)
        usable = sum(1 for r in rows if r["status"] == "done")
        print(f"wrote {args.output}: {len(rows)} runs, {usable} with steps to target", file=sys.stderr)
    else:
        sys.stdout.write(steps_csv(rows))
    return 0
