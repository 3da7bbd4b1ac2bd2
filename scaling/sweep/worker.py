"""One worker: claim a run, run it, record the outcome, repeat until the sweep is finished.

Any number of workers (threads of nothing: separate processes, on one or many machines
sharing the filesystem) run the same loop on the same sweep directory; claims
(``scaling.sweep.locks``) make sure a run is executed by one worker at a time, and a run's
``status`` marker (``scaling.rundir``) that it is never executed again once finished.

Failure isolation: an exception inside a run (a crash, an out-of-memory error) is caught and
recorded as ``failed`` with its reason (traceback in ``error.txt``); a diverged run is recorded
by the workload as ``diverged``; the worker goes on. A failed run is retried by a worker that
started after the failure (i.e. when the sweep command is run again), never in a loop.
Interrupted runs (no status marker) resume from their checkpoint in the run directory.

Runs together (grid ``together: true``, the default, for workloads with ``run_many``): a worker
that claims a run also claims the unclaimed runs of its group, phase and batch size that share
its shapes (``together_key``) and trains them as one vmapped program (``scaling.lm.many``):
the reference lr x seed grid runs to D; a chase batch size's lr grid (per seed) races to the
target and stops when the first lr reaches it (S(B) is the minimum over the grid). Records are
the same as for separate runs, except that the outpaced runs are ``censored`` early.

Compile reuse: a worker runs many runs in one process, so the trainer's jitted functions
(cached by shape) are reused across runs; JAX's persistent compilation cache
(``scaling.lm.compile_cache``) carries compiled programs across processes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from scaling import rundir
from scaling.sweep import locks
from scaling.sweep.grid import ADAPTIVE, AUTO
from scaling.sweep.plan import REFERENCE
from scaling.sweep.protocol import LOCKS, RUN_INFO, Run, SweepState
from scaling.errors import storage_error
from scaling.store import atomic_write_json, atomic_write_text, refuse_links_in
from scaling.summary import CAP, IMPLIED, RunSummary, reference_loss

DEFAULT_POLL_S = 2.0  # how often an idle worker looks for work that became available
ERROR_FILE = "error.txt"
MAX_TOGETHER = 16  # most runs trained as one program (a grid's lr x seed set is far smaller)
RETRYABLE = ("failed",)  # statuses a later sweep invocation runs again (diverged is deterministic)
OOM_MARKERS = ("RESOURCE_EXHAUSTED", "out of memory", "Out of memory", "OOM")
NO_STATUS = "workload returned without writing a status"


@dataclass
class WorkerOptions:
    name: str = ""
    heartbeat_s: float = locks.DEFAULT_HEARTBEAT_S
    stale_after_s: float = locks.DEFAULT_STALE_AFTER_S
    poll_s: float = DEFAULT_POLL_S
    progress: bool = False  # the workload's own per-step progress output
    max_runs: Optional[int] = None  # stop after this many runs (tests, benchmarks)
    quiet: bool = False
    started: float = field(default_factory=time.time)

    def __post_init__(self):
        if not self.name:
            self.name = f"{socket.gethostname()}:{os.getpid()}"


def failure_reason(exc: BaseException) -> str:
    """One line saying why a run crashed; out-of-memory errors are named as such."""
    text = " ".join(str(exc).split())[:500]
    if isinstance(exc, MemoryError) or any(m in text for m in OOM_MARKERS):
        return f"out of memory: {type(exc).__name__}: {text}"
    return f"crashed: {type(exc).__name__}: {text}"


def untrained_summary(sweep: SweepState, run: Run, status: str, reason: str,
                      censored_by: Optional[str] = None) -> RunSummary:
    """The summary of a run the worker records itself: a failure, or censored without training."""
    g = sweep.plan.group(run.spec.group)
    return RunSummary(status=status, reason=reason, censored_by=censored_by, target_loss=run.target,
                      params=g.params, tokens=g.tokens, batch_size=run.spec.batch_size, lr=run.spec.lr,
                      seed=run.spec.seed, workload=sweep.workload.name, run_id=run.run_id)


def execute(sweep: SweepState, run: Run, opts: WorkerOptions) -> dict:
    """Run one claimed run with failure isolation; returns its summary (always recorded)."""
    _prepare(sweep, run)  # a retried failure resumes from its checkpoint
    try:
        summary = sweep.workload.run(run.config, run.run_dir, progress=opts.progress)
    except (KeyboardInterrupt, SystemExit):
        raise  # interrupted, not failed: resumes next time
    except BaseException as exc:  # noqa: BLE001 - failure isolation is the point
        if storage_error(exc) is not None:
            raise  # the disk is full or read-only: the sweep stops and resumes next time, no run failed
        reason = failure_reason(exc)
        atomic_write_text(run.run_dir / ERROR_FILE, traceback.format_exc())
        return rundir.finish(run.run_dir, untrained_summary(sweep, run, "failed", reason))
    if rundir.read_status(run.run_dir) is None:
        return rundir.finish(run.run_dir, untrained_summary(sweep, run, "failed", NO_STATUS))
    return rundir.read_summary(run.run_dir) or summary


def _prepare(sweep: SweepState, run: Run) -> None:
    refuse_links_in(sweep.root, run.run_dir)  # never write a run's records outside the sweep directory
    if rundir.read_status(run.run_dir) is not None:
        rundir.clear_status(run.run_dir)  # a retried failure
    run.run_dir.mkdir(parents=True, exist_ok=True)
    if rundir.read_config(run.run_dir) is None:
        rundir.write_config(run.run_dir, sweep.workload.config_dict(run.config),
                            workload=sweep.workload.name, run_id=run.run_id)
    if not (run.run_dir / RUN_INFO).exists():
        g = sweep.plan.group(run.spec.group)
        atomic_write_json(run.run_dir / RUN_INFO, {
            "sweep": sweep.plan.grid.name, "group": g.key, "model": g.model, "params": g.params,
            "tokens": g.tokens, "phase": run.spec.phase, "batch_size": run.spec.batch_size,
            "lr": run.spec.lr, "seed": run.spec.seed, "max_tokens": run.spec.max_tokens,
            "target_loss": run.target})


def can_run_together(sweep: SweepState) -> bool:
    """Grid ``together: true``, or ``auto`` (the default) where the workload says that training
    together pays (``together_by_default``: the LM trainer on an accelerator)."""
    if not hasattr(sweep.workload, "run_many"):
        return False
    together = sweep.plan.grid.together
    if together == AUTO:
        return sweep.workload.together_by_default()
    return bool(together)


def is_race(run: Run) -> bool:
    """A chase run races its lr grid to the target (references run to D: no target)."""
    return run.target is not None and run.spec.phase != REFERENCE


def mates_of(sweep: SweepState, run: Run, candidates: list) -> list:
    """The runs that can train with ``run`` as one program: same group, phase and batch size,
    same shapes (``together_key``), and for a race the same seed (S(B) is per seed)."""
    key = sweep.workload.together_key(run.config)
    out = []
    for r in candidates:
        if r.run_id == run.run_id or len(out) + 1 >= MAX_TOGETHER:
            continue
        s, t = r.spec, run.spec
        if (s.group, s.phase, s.batch_size, r.target) != (t.group, t.phase, t.batch_size, run.target):
            continue
        if is_race(run) and s.seed != t.seed:
            continue
        if sweep.workload.together_key(r.config) == key:
            out.append(r)
    return out


def execute_together(sweep: SweepState, runs: list, opts: WorkerOptions) -> list:
    """Train claimed ``runs`` as one program; returns their summaries (always recorded)."""
    for run in runs:
        _prepare(sweep, run)
    try:
        sweep.workload.run_many([r.config for r in runs], [r.run_dir for r in runs],
                                race=is_race(runs[0]), progress=opts.progress)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - failure isolation is the point
        if storage_error(exc) is not None:
            raise  # the disk is full or read-only: the sweep stops and resumes next time, no run failed
        reason = failure_reason(exc)
        for run in runs:
            if rundir.read_status(run.run_dir) is None:
                atomic_write_text(run.run_dir / ERROR_FILE, traceback.format_exc())
                rundir.finish(run.run_dir, untrained_summary(sweep, run, "failed", reason))
    out = []
    for run in runs:
        if rundir.read_status(run.run_dir) is None:
            rundir.finish(run.run_dir, untrained_summary(sweep, run, "failed", NO_STATUS))
        out.append(rundir.read_summary(run.run_dir) or {"status": rundir.read_status(run.run_dir)})
    return out


WAIT = "wait"  # implied_censored: not decidable yet (a smaller batch size that could imply it is unfinished)


def implied_censored(sweep: SweepState, run: Run, known: list) -> Optional[str]:
    """Why ``run`` need not be trained, None when it must be, or WAIT while a smaller batch size
    at or above B_ref has unfinished runs: a smaller batch size of its group (same seed),
    above B_ref (or above a batch size that reached the target), where every lr finished without
    reaching the target, at least one hit the token cap, and the lowest final loss there was not
    at the largest lr of the grid.

    Tokens to target with a tuned lr, B x S(B), grow with B (McCandlish et al. 2018:
    E = E_min (1 + B / B_noise)); the cap is the same multiple of D at every B, so a larger batch
    cannot reach the target within it either -- unless the lr grid was too narrow at B (its
    largest lr did best, and a larger B would favour it more), which is why that case is trained. Such runs are recorded ``censored`` at once, which is what training them would have
    recorded, and the analysis leaves censored runs out anyway (docs/design.md).
    """
    if run.spec.phase == REFERENCE or run.target is None or sweep.plan.grid.protocol == ADAPTIVE:
        return None  # the adaptive search decides which batch sizes run (scaling.sweep.adaptive)
    by_batch: dict = {}
    for r in known:
        s = r.spec
        if (s.group, s.seed, s.phase) == (run.spec.group, run.spec.seed, run.spec.phase) \
                and s.batch_size < run.spec.batch_size and r.target == run.target:
            by_batch.setdefault(s.batch_size, []).append(r)
    ref = sweep.plan.grid.reference_batch
    reached_below = ref is not None  # the reference batch reaches the target by construction
    for b in sorted(by_batch):
        summaries = [rundir.read_run_summary(r.run_dir) for r in by_batch[b]]
        if any(x is None for x in summaries):
            if ref is None or b >= ref:
                return WAIT  # decided only once B=b finished, so that the order runs finish in never matters
            continue
        if any(x.status == "done" for x in summaries):
            reached_below = True
            continue
        if not reached_below or (ref is not None and b < ref):
            continue  # below the batch sizes that reach the target, a capped B says nothing of larger ones
        capped = [(reference_loss(x.to_dict()), float(x.lr)) for x in summaries
                  if x.status == "censored" and x.censored_by == CAP]
        capped = [(loss, lr) for loss, lr in capped if loss is not None]
        if not capped:
            continue
        if min(capped)[1] >= max(float(r.spec.lr) for r in by_batch[b]):
            continue  # the largest lr did best: a larger lr at a larger B might still get there
        return (f"not trained: at B={b} every lr reached the token cap {run.spec.max_tokens} before the "
                f"target {run.target:g} (the best at lr {min(capped)[1]:g}, inside the grid), and tokens to "
                f"target grow with batch size (McCandlish et al. 2018)")
    return None


def record_implied(sweep: SweepState, run: Run, reason: str) -> dict:
    _prepare(sweep, run)
    atomic_write_text(run.run_dir / rundir.METRICS, "")  # no training, no rows
    return rundir.finish(run.run_dir, untrained_summary(sweep, run, "censored", reason, censored_by=IMPLIED))


def needs_run(run: Run, opts: WorkerOptions) -> bool:
    status = rundir.read_status(run.run_dir)
    if status is None:
        return True
    if status in RETRYABLE:
        try:
            finished_at = (run.run_dir / rundir.STATUS).stat().st_mtime
        except FileNotFoundError:
            return True
        return finished_at < opts.started
    return False


def _say(opts: WorkerOptions, text: str) -> None:
    if not opts.quiet:
        print(f"[{opts.name}] {text}", flush=True)


def _describe(summary: dict) -> str:
    status = summary.get("status")
    if status == "done" and summary.get("steps_to_target") is not None:
        return f"done, S={summary['steps_to_target']:.1f} steps to target"
    if status == "done":
        loss = summary.get("final_eval_loss_ewa") or summary.get("final_eval_loss")
        return f"done, final loss {loss:.4f}" if loss is not None else "done"
    return f"{status}: {summary.get('reason', '')}"


SKIPPED, IMPLIED_DONE, TRAINED = "skipped", "implied", "trained"  # what _attempt did with a run


def costliest_groups_first(sweep: SweepState, runs: list) -> list:
    """``runs`` with the groups of the largest N x D first, each group's runs in planned order.

    Longest-processing-time-first list scheduling (Graham 1969): a group is a chain of dependent
    runs (the reference search, then one chase search after another, each raced run after the
    last), so the largest group's chain bounds the sweep's wall time; started first, it runs while
    the other workers fill in with the smaller groups instead of finishing alone at the end.
    """
    cost = {g.key: g.params * g.tokens for g in sweep.plan.groups}
    return sorted(runs, key=lambda r: -cost.get(r.spec.group, 0))


def work(sweep: SweepState, opts: Optional[WorkerOptions] = None) -> dict:
    """The worker loop. Returns counts {"ran": n, "failed": n, ...} of what this worker did."""
    opts = opts or WorkerOptions()
    attempted: set = set()
    counts: dict = {"ran": 0}
    while opts.max_runs is None or counts["ran"] < opts.max_runs:
        targets = sweep.targets()
        known, waiting = sweep.known_runs(targets)
        todo = costliest_groups_first(sweep, [r for r in known if r.run_id not in attempted and needs_run(r, opts)])
        claimed = False
        for run in todo:
            outcome = _attempt(sweep, run, todo, known, attempted, opts, counts)
            claimed = claimed or outcome != SKIPPED
            if outcome == TRAINED:
                break  # re-plan: a finished reference run may have set a group's target
        if claimed:
            continue
        # nothing claimable: wait while other workers hold runs this sweep still needs
        pending = [r for r in known if r.run_id not in attempted and needs_run(r, opts)]
        unresolved = [s for s in waiting if targets.get(s.group) is None]  # not blocked
        if not pending and not unresolved:
            break
        if not pending and not locks.live_claims(sweep.root / LOCKS, opts.stale_after_s):
            break  # nobody is running the reference runs these wait on
        time.sleep(opts.poll_s)
    return counts


def _claim(sweep: SweepState, run: Run, opts: WorkerOptions):
    return locks.try_claim(sweep.root / LOCKS, run.run_id, opts.name, heartbeat_s=opts.heartbeat_s,
                           stale_after_s=opts.stale_after_s)


def _count(counts: dict, status: Optional[str]) -> None:
    counts["ran"] += 1
    counts[status] = counts.get(status, 0) + 1


def _attempt(sweep: SweepState, run: Run, todo: list, known: list, attempted: set, opts: WorkerOptions,
             counts: dict) -> str:
    """Claim ``run`` and handle it: SKIPPED (claimed or finished by another worker), IMPLIED_DONE
    (recorded censored without training) or TRAINED (trained, with the mates it could claim)."""
    claim = _claim(sweep, run, opts)
    if claim is None:
        return SKIPPED
    with contextlib.ExitStack() as stack:
        stack.enter_context(claim)
        if not needs_run(run, opts):  # finished by someone else since we looked
            attempted.add(run.run_id)
            return SKIPPED
        implied = implied_censored(sweep, run, known)
        if implied == WAIT:
            return SKIPPED  # claimed again once the smaller batch sizes finished
        if implied is not None:
            attempted.add(run.run_id)
            record_implied(sweep, run, implied)
            sweep.log_event("finish", run, opts.name, status="censored", seconds=0.0, implied=True)
            _say(opts, f"censored without training: {implied} {run.run_id}")
            _count(counts, "censored")
            return IMPLIED_DONE
        group = [run]
        if can_run_together(sweep):
            for mate in mates_of(sweep, run, [r for r in todo if r.run_id not in attempted]):
                c = _claim(sweep, mate, opts)
                if c is not None:
                    stack.enter_context(c)
                    if needs_run(mate, opts):
                        group.append(mate)
        _train(sweep, group, attempted, opts, counts)
    return TRAINED


def _train(sweep: SweepState, group: list, attempted: set, opts: WorkerOptions, counts: dict) -> None:
    """Train claimed runs (one, or a group as one program) and log their outcomes."""
    for r in group:
        attempted.add(r.run_id)
        sweep.log_event("start", r, opts.name)
        _say(opts, f"start {r.label}")
    t0 = time.time()
    if len(group) == 1:
        summaries = [execute(sweep, group[0], opts)]
    else:
        _say(opts, f"training {len(group)} runs together{' (racing to the target)' if is_race(group[0]) else ''}")
        summaries = execute_together(sweep, group, opts)
    for r, summary in zip(group, summaries):
        sweep.log_event("finish", r, opts.name, status=summary.get("status"), seconds=time.time() - t0,
                        together=len(group))
        _say(opts, f"{_describe(summary)} ({time.time() - t0:.1f} s) {r.run_id}")
        _count(counts, summary.get("status"))
