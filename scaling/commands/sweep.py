"""``scaling sweep GRID``: run a grid file's sweep, resumably (mirrors ``scaling.sweep.run_sweep``)."""

from __future__ import annotations

HELP = "expand a grid file and run what is not done yet (two phases, resumable, K workers)"


def add_arguments(p) -> None:
    from scaling.sweep.locks import DEFAULT_HEARTBEAT_S, DEFAULT_STALE_AFTER_S
    from scaling.sweep.runner import DEFAULT_COMPILE_CACHE

    p.add_argument("grid", metavar="GRID", help="grid file (YAML), e.g. runs/grids/demo.yaml")
    p.add_argument("--workers", type=int, default=1, metavar="K",
                   help="worker processes on this machine (default 1: in this process)")
    p.add_argument("--dry-run", action="store_true", help="print the expanded runs and token cost; run nothing")
    p.add_argument("--out", default=None, metavar="DIR", help="sweep directory (default runs/<grid name>)")
    p.add_argument("--devices", default=None, metavar="LIST",
                   help="comma-separated accelerator ids, one worker each (sets CUDA_VISIBLE_DEVICES)")
    p.add_argument("--device", default=None, metavar="ID", help="this worker's accelerator (CUDA_VISIBLE_DEVICES)")
    p.add_argument("--compile-cache", default=DEFAULT_COMPILE_CACHE, metavar="DIR",
                   help="JAX persistent compilation cache shared by all workers "
                        "(default: the trainer's, $SCALING_CACHE/jax or ~/.cache/scaling/jax)")
    p.add_argument("--heartbeat", type=float, default=DEFAULT_HEARTBEAT_S, metavar="S",
                   help=f"seconds between lock heartbeats (default {DEFAULT_HEARTBEAT_S:g})")
    p.add_argument("--stale-after", type=float, default=DEFAULT_STALE_AFTER_S, metavar="S",
                   help=f"a claim not touched for S seconds is taken over (default {DEFAULT_STALE_AFTER_S:g})")
    p.add_argument("--poll", type=float, default=2.0, metavar="S", help="idle worker poll interval")
    p.add_argument("--progress", action="store_true", help="per-step progress of each run")
    p.add_argument("--quiet", action="store_true", help="no per-run lines")
    p.add_argument("--max-runs", type=int, default=None, metavar="N", help="stop after N runs (per worker)")
    p.add_argument("--name", default="", help="worker name in locks and events (default host:pid)")
    p.add_argument("--worker", action="store_true",
                   help="run as one independent worker (what --workers K starts; also for SLURM arrays)")


def _positive(value: float, flag: str) -> float:
    from scaling.errors import ScalingError

    if not value > 0:
        raise ScalingError(f"{flag} must be positive, got {value}")
    return value


def run(args) -> int:
    import os

    from scaling.errors import ScalingError
    from scaling.sweep.runner import run_sweep, run_worker
    from scaling.sweep.status import render, sweep_status

    if args.device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(args.device)  # before any JAX import
    devices = [d.strip() for d in args.devices.split(",")] if args.devices is not None else None
    if devices is not None and not any(devices):
        raise ScalingError("--devices: empty list")
    if devices is not None and not all(devices):
        raise ScalingError(f"--devices {args.devices!r}: an empty entry (give ids separated by single commas, e.g. 0,1)")
    if args.max_runs is not None and args.max_runs < 1:
        raise ScalingError(f"--max-runs must be >= 1, got {args.max_runs}")
    kw = dict(heartbeat_s=_positive(args.heartbeat, "--heartbeat"),
              stale_after_s=_positive(args.stale_after, "--stale-after"), poll_s=_positive(args.poll, "--poll"),
              progress=args.progress, quiet=args.quiet, max_runs=args.max_runs, name=args.name)
    if args.stale_after <= args.heartbeat:
        raise ScalingError("--stale-after must be longer than --heartbeat")
    cache = args.compile_cache
    if args.worker:
        run_worker(args.grid, args.out, compile_cache=cache, **kw)
        return 0
    result = run_sweep(args.grid, workers=args.workers, dry_run=args.dry_run, out=args.out, devices=devices,
                       compile_cache=cache, **kw)
    if not args.dry_run:
        print(render([sweep_status(result.root)]))
        if any(code != 0 for code in result.exit_codes):
            print(f"scaling sweep: worker exit codes {list(result.exit_codes)}; rerun the command to finish")
            return 1
    return 0
