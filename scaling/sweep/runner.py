"""``scaling sweep GRID``: validate, expand, and run a grid with one or more workers.

``workers=1`` runs the worker loop in this process (compiled steps are reused across runs).
``workers=K`` starts K worker processes (``python -m scaling sweep GRID --worker``), each
optionally pinned to one accelerator (``devices``: worker i gets ``CUDA_VISIBLE_DEVICES`` =
devices[i]); a hard crash of one does not take the others down. Independent workers started
by hand (or by a SLURM array) on several machines sharing the filesystem cooperate the same
way: each claims runs through lock files. Rerunning the same command finishes the sweep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from scaling.errors import ScalingError
from scaling.store import check_output_dir, refuse_links
from scaling.sweep import edits, locks
from scaling.sweep.grid import ADAPTIVE, load_grid
from scaling.sweep.plan import REFERENCE, Plan, expand, token_cost
from scaling.sweep.protocol import EVENTS, LOCKS, MANIFEST, SweepState
from scaling.lm.compile_cache import enable as enable_compile_cache
from scaling.sweep.worker import WorkerOptions, work

DEFAULT_RUNS_ROOT = "runs"
DEFAULT_COMPILE_CACHE = None  # None: the trainer's own ($SCALING_CACHE/jax or ~/.cache/scaling/jax)


@dataclass(frozen=True)
class SweepOutcome:
    root: Path
    plan: Plan
    counts: dict  # what the workers of this invocation did (in-process only)
    exit_codes: tuple = ()


def sweep_dir(grid_name: str, out: "str | os.PathLike | None") -> Path:
    return Path(out) if out is not None else Path(DEFAULT_RUNS_ROOT) / grid_name


def open_sweep(grid_path, out=None) -> SweepState:
    """Load, validate and expand a grid file; bind it to its sweep directory, which must hold
    no sweep of another grid (``scaling.sweep.edits``: only extensions are accepted)."""
    from scaling.workloads import get_workload

    grid = load_grid(grid_path)
    workload = get_workload(grid.workload)
    plan = expand(grid, workload)
    sweep = SweepState(plan, workload, sweep_dir(grid.name, out))
    if sweep.root.is_dir():
        edits.check(sweep.read_manifest(), plan, workload, sweep.root)
    return sweep


def prepare_root(sweep: SweepState) -> None:
    """Make the sweep directory before any run: ScalingError (one line) where it cannot be written
    (a file there, read-only) or where its manifest, events or locks are links planted in it."""
    check_output_dir(sweep.root)
    sweep.root.mkdir(parents=True, exist_ok=True)
    refuse_links(sweep.root, sweep.root / MANIFEST, sweep.root / EVENTS, sweep.root / LOCKS)


def finish_root(sweep: SweepState, stale_after_s: float) -> None:
    """After the workers: remove the stale claim files (dead or finished workers' locks)."""
    locks.clean(sweep.root / LOCKS, stale_after_s)


def print_notes(sweep: SweepState) -> None:
    """What the grid file's reading decided for the user (``Grid.notes``), one line each."""
    for note in sweep.plan.grid.notes:
        print(f"scaling sweep: note: {note}", file=sys.stderr)


def _fmt_tokens(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:g}"


def describe_adaptive(sweep: SweepState) -> str:
    """The dry-run text of an adaptive sweep: the first wave (what the searches ask for before any
    result) and the upper bound on cost (every lattice lr at every batch size, as the grid protocol)."""
    plan = sweep.plan
    known, waiting = sweep.known_runs(sweep.targets(record=False), record=False)
    lines = [f"sweep {plan.grid.name!r} ({plan.grid.workload}, protocol adaptive) -> {sweep.root}",
             f"first wave ({len(known)} runs; later waves follow from their results):",
             f"{'run_id':12}  {'phase':9}  {'group':24} {'batch':>6} {'lr':>9} {'seed':>4}"]
    for r in known:
        lines.append(f"{r.run_id:12}  {r.spec.phase:9}  {r.spec.group:24} {r.spec.batch_size:>6} "
                     f"{r.spec.lr:>9.3g} {r.spec.seed:>4}")
    c = token_cost(plan)
    lines.append(f"{len(waiting)} lattice cells wait for their group's target; the searches train a subset")
    lines.append(f"token cost: at most {_fmt_tokens(c['total_tokens_max'])} tokens (every lr of the lattice at "
                 f"every batch size, cap {plan.grid.max_tokens_factor:g} x D); usually a fraction of that")
    return "\n".join(lines)


def describe_plan(sweep: SweepState) -> str:
    """The dry-run text: every run (id where known) and the token cost."""
    plan = sweep.plan
    if plan.grid.protocol == ADAPTIVE:
        return describe_adaptive(sweep)
    targets = sweep.targets(record=False)
    lines = [f"sweep {plan.grid.name!r} ({plan.grid.workload}) -> {sweep.root}",
             f"{'run_id':12}  {'phase':9}  {'group':24} {'params':>9} {'tokens':>9} {'batch':>6} "
             f"{'lr':>9} {'seed':>4} {'max_tokens':>10}  target"]
    for i, r in enumerate(plan.runs):
        g = plan.group(r.group)
        t = targets.get(r.group)
        if r.phase == REFERENCE:
            rid, tgt = sweep.run_for(i, None).run_id, "sets L* (Definition 1)"
        elif t and "loss" in t:
            rid, tgt = sweep.run_for(i, t["loss"]).run_id, f"{t['loss']:.6g}"
        else:
            rid, tgt = "(after L*)", "L* of its group"
        lines.append(f"{rid:12}  {r.phase:9}  {g.key:24} {g.params:>9} {g.tokens:>9} {r.batch_size:>6} "
                     f"{r.lr:>9.3g} {r.seed:>4} {r.max_tokens or g.tokens:>10}  {tgt}")
    c = token_cost(plan)
    lines.append(f"{c['runs']} runs in {c['groups']} (N, D) groups: {c['reference_runs']} reference, "
                 f"{c['chase_runs']} chasing the target")
    lines.append(f"token cost: {_fmt_tokens(c['reference_tokens'])} reference + at most "
                 f"{_fmt_tokens(c['chase_tokens_max'])} chasing (cap {plan.grid.max_tokens_factor:g} x D) "
                 f"= at most {_fmt_tokens(c['total_tokens_max'])} tokens")
    return "\n".join(lines)


def _worker_command(grid_path, out: Path, opts: WorkerOptions, compile_cache, name: str) -> list:
    cmd = [sys.executable, "-m", "scaling", "sweep", str(grid_path), "--worker", "--out", str(out),
           "--name", name, "--heartbeat", str(opts.heartbeat_s), "--stale-after", str(opts.stale_after_s),
           "--poll", str(opts.poll_s)]
    if compile_cache:
        cmd += ["--compile-cache", str(compile_cache)]
    if opts.quiet:
        cmd.append("--quiet")
    return cmd


def run_sweep(grid_path, workers: int = 1, dry_run: bool = False, out=None,
              devices: Optional[Sequence[str]] = None, compile_cache=DEFAULT_COMPILE_CACHE,
              heartbeat_s: float = locks.DEFAULT_HEARTBEAT_S,
              stale_after_s: float = locks.DEFAULT_STALE_AFTER_S, poll_s: float = 2.0,
              progress: bool = False, quiet: bool = False, max_runs: Optional[int] = None,
              name: str = "", print_fn=print) -> SweepOutcome:
    """Run (or with ``dry_run`` describe) a sweep; returns what this invocation did."""
    if workers < 1:
        raise ScalingError(f"--workers must be >= 1, got {workers}")
    devices = [str(d) for d in (devices or [])]
    if workers == 1 and len(devices) == 1:
        os.environ["CUDA_VISIBLE_DEVICES"] = devices[0]  # before the workload imports JAX
    sweep = open_sweep(grid_path, out)  # validates the whole grid before anything runs
    print_notes(sweep)
    if dry_run:
        print_fn(describe_plan(sweep))
        return SweepOutcome(sweep.root, sweep.plan, {})
    prepare_root(sweep)
    sweep.targets()  # writes the manifest
    opts = WorkerOptions(name=name, heartbeat_s=heartbeat_s, stale_after_s=stale_after_s, poll_s=poll_s,
                         progress=progress, max_runs=max_runs, quiet=quiet)
    if workers == 1 and len(devices) <= 1:
        enable_compile_cache(compile_cache)
        counts = work(sweep, opts)
        finish_root(sweep, stale_after_s)
        return SweepOutcome(sweep.root, sweep.plan, counts)
    procs = []
    workers = max(workers, len(devices))  # one worker per listed device
    for i in range(workers):
        env = dict(os.environ)
        if devices:
            env["CUDA_VISIBLE_DEVICES"] = str(devices[i % len(devices)])
        wname = f"{opts.name}/w{i}"
        procs.append(subprocess.Popen(_worker_command(grid_path, sweep.root, opts, compile_cache, wname),
                                      env=env))
    try:
        codes = tuple(p.wait() for p in procs)
    except KeyboardInterrupt:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        raise
    finish_root(sweep, stale_after_s)
    return SweepOutcome(sweep.root, sweep.plan, {}, codes)


def run_worker(grid_path, out=None, **kw) -> dict:
    """One worker process's loop on the sweep (``scaling sweep GRID --worker``)."""
    compile_cache = kw.pop("compile_cache", DEFAULT_COMPILE_CACHE)
    sweep = open_sweep(grid_path, out)
    prepare_root(sweep)
    enable_compile_cache(compile_cache)
    opts = WorkerOptions(**kw)
    counts = work(sweep, opts)
    finish_root(sweep, opts.stale_after_s)
    return counts
