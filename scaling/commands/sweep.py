"""``scaling sweep GRID``: run a grid file's sweep, resumably (mirrors ``scaling.sweep.run_sweep``)."""

from __future__ import annotations

HELP = "expand a grid file and run what is not done yet (two phases, resumable, K workers)"


def add_arguments(p) -> None:
    from scaling.engines import ENGINES
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
    e = p.add_argument_group("engines (where the workers run; the sweep directory decides what runs)")
    e.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: this machine (default); ray: K Ray tasks (--workers K); slurm: a SLURM array "
                        "(--array N) through submitit")
    e.add_argument("--address", default=None, metavar="ADDR", help="ray: cluster address (default: a local instance)")
    e.add_argument("--cpus-per-worker", type=float, default=1.0, metavar="C", help="ray: CPUs per worker task")
    e.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G", help="ray: GPUs per worker task")
    e.add_argument("--array", type=int, default=None, metavar="N", help="slurm: array tasks (workers)")
    e.add_argument("--partition", default=None, metavar="P", help="slurm: partition")
    e.add_argument("--gpus-per-task", type=int, default=0, metavar="G", help="slurm: GPUs per array task")
    e.add_argument("--cpus-per-task", type=int, default=None, metavar="C", help="slurm: CPUs per array task")
    e.add_argument("--time", default=None, metavar="T",
                   help="slurm: time limit per task (minutes or [D-]HH:MM:SS; default 4:00:00; requeued at the limit)")
    e.add_argument("--cluster", choices=("slurm", "local"), default="slurm",
                   help="slurm: 'local' runs the array on this machine (submitit's LocalExecutor)")
    e.add_argument("--no-wait", action="store_true", help="slurm: return once submitted (scaling status follows up)")


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
    check_engine_flags(args)
    if args.engine != "local" and not args.dry_run:
        result = run_engine(args, compile_cache=cache, **kw)
        if result is None:
            return 0  # submitted, not waiting
    else:
        result = run_sweep(args.grid, workers=args.workers, dry_run=args.dry_run, out=args.out, devices=devices,
                           compile_cache=cache, **kw)
    if not args.dry_run:
        print(render([sweep_status(result.root)]))
        if any(code != 0 for code in result.exit_codes):
            print(f"scaling sweep: worker exit codes {list(result.exit_codes)}; rerun the command to finish")
            return 1
    return 0


RAY_FLAGS = {"address": None, "cpus_per_worker": 1.0, "gpus_per_worker": 0.0}
SLURM_FLAGS = {"array": None, "partition": None, "gpus_per_task": 0, "cpus_per_task": None, "time": None,
               "cluster": "slurm", "no_wait": False}


def check_engine_flags(args) -> None:
    """Each engine's flags only with that engine; --array with slurm; --devices only locally."""
    from scaling.errors import ScalingError

    def given(flags: dict) -> list:
        return ["--" + k.replace("_", "-") for k, default in flags.items() if getattr(args, k) != default]

    for engine, flags in (("ray", RAY_FLAGS), ("slurm", SLURM_FLAGS)):
        if args.engine != engine and given(flags):
            raise ScalingError(f"{', '.join(given(flags))}: only with --engine {engine}")
    if args.engine == "slurm" and args.array is None and not args.dry_run:
        raise ScalingError("--engine slurm needs --array N (the number of workers)")
    if args.engine == "slurm" and args.workers != 1:
        raise ScalingError("--engine slurm: give the number of workers as --array N, not --workers")
    if args.engine != "local" and (args.devices or args.device):
        raise ScalingError(f"--devices/--device are for the local engine; --engine {args.engine} places workers "
                           "by resource requests (--gpus-per-worker, --gpus-per-task)")


def run_engine(args, **kw):
    """A Ray or SLURM sweep; the outcome, or None once an array was submitted without waiting."""
    if args.engine == "ray":
        from scaling.engines.ray_engine import run_ray

        return run_ray(args.grid, args.out, address=args.address, workers=args.workers,
                       cpus_per_worker=args.cpus_per_worker, gpus_per_worker=args.gpus_per_worker, **kw)
    from scaling.engines.slurm_engine import run_slurm

    result = run_slurm(args.grid, args.out, array=args.array, partition=args.partition,
                       gpus_per_task=args.gpus_per_task, cpus_per_task=args.cpus_per_task, time_limit=args.time,
                       cluster=args.cluster, wait=not args.no_wait, **kw)
    return None if args.no_wait else result
