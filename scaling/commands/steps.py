"""``scaling steps RUNS -o steps.csv``: the steps-to-target table (mirrors ``scaling.sweep.export.steps_rows``)."""

from __future__ import annotations

HELP = "steps-to-target table (CSV) from a sweep's run directories"


def add_arguments(p) -> None:
    p.add_argument("runs", metavar="RUNS", help="a sweep directory or a directory of sweeps")
    p.add_argument("-o", "--output", default=None, metavar="STEPS.csv",
                   help="write the table here (atomically); default: stdout")
    p.add_argument("--losses", action="store_true",
                   help="write the loss grid instead: the final loss of every run that trained to its budget "
                        "(scaling.sweep.losses.loss_rows), for `scaling optimum`")


def run(args) -> int:
    import sys

    from scaling.errors import ScalingError
    from scaling.sweep.export import steps_csv, steps_rows, write_steps_csv

    if args.output:
        from scaling.store import check_output_file

        check_output_file(args.output)  # before reading the runs
    if args.losses:
        return _losses(args)
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


def _losses(args) -> int:
    import sys

    from scaling.errors import ScalingError
    from scaling.sweep.losses import loss_rows, losses_csv, write_losses_csv

    rows, skipped = loss_rows(args.runs)
    if not rows:
        raise ScalingError(f"{args.runs}: no run trained to its budget"
                           + (f" ({', '.join(f'{n} {k}' for k, n in sorted(skipped.items()))})" if skipped else ""))
    if args.output:
        write_losses_csv(rows, args.output)
        done = sum(1 for r in rows if r["status"] == "done")
        left = ", ".join(f"{n} {k}" for k, n in sorted(skipped.items()))
        print(f"wrote {args.output}: {done} runs with a final loss at their budget, {len(rows) - done} diverged "
              f"or failed" + (f"; not in it: {left}" if left else ""), file=sys.stderr)
    else:
        sys.stdout.write(losses_csv(rows))
    return 0
