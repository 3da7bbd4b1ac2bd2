"""``scaling sweep GRID --engine slurm --array N [--partition P] [--gpus-per-task G] [--time T]``.

A SLURM job array of N tasks through submitit, each the one worker loop
(``scaling.engines.call.WorkerCall`` -> ``scaling.sweep.runner.run_worker``) on the sweep
directory, which must be on a filesystem the nodes share. The claims decide what runs, so the
array may be resubmitted, enlarged or mixed with hand-started workers at any time.

- The driver waits for the array (reporting from ``events.jsonl``, ``scaling.engines.progress``)
  or, with ``wait=False`` (``--no-wait``), returns at once; ``scaling status DIR`` follows up.
- A task warned of its time limit or of preemption is requeued by submitit (``SlurmWorker``
  is checkpointable): its worker stops (claims released, the run in progress resumes from its
  checkpoint), and the requeued task goes on with the sweep.
- Ctrl-C while waiting cancels the array (``scancel``); unfinished runs resume next time.
- ``cluster="local"`` (``--cluster local``) runs the array on this machine as processes
  (submitit's LocalExecutor), to try a command without SLURM; the default needs ``srun``.

submitit's files (pickled calls, each task's stdout and stderr) go to ``DIR/slurm/``.
"""

from __future__ import annotations

import re
import shutil
import time
from typing import Callable, Optional

from scaling.engines.call import WorkerCall, worker_name
from scaling.engines.progress import Report
from scaling.errors import ScalingError
from scaling.sweep.runner import SweepOutcome, open_sweep

ENGINE = "slurm"
CLUSTERS = ("slurm", "local")
DEFAULT_TIME_MIN = 240  # per array task (submitit's own default is 5 minutes); requeued at the limit
LOG_DIR = "slurm"  # under the sweep directory
POLL_S = 5.0
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def parse_time(text) -> int:
    """A SLURM time limit in minutes (rounded up): "90", "90:00" (min:s), "1:30:00", "2-0", "2-12:00:00"."""
    m = _TIME.match(str(text).strip())
    if not m:
        raise ScalingError(f"--time {text!r}: expected minutes, MM:SS, HH:MM:SS or D-HH[:MM[:SS]]")
    days, a, b, c = (int(x) if x is not None else None for x in m.groups())
    if days is not None:  # D-HH, D-HH:MM, D-HH:MM:SS
        h, mi, s = a, b or 0, c or 0
        seconds = ((days * 24 + h) * 60 + mi) * 60 + s
    elif c is not None:  # HH:MM:SS
        seconds = (a * 60 + b) * 60 + c
    elif b is not None:  # MM:SS
        seconds = a * 60 + b
    else:
        seconds = a * 60
    if seconds <= 0:
        raise ScalingError(f"--time {text!r} must be positive")
    return -(-seconds // 60)


class SlurmWorker:
    """One array task: the worker loop; checkpointable, so submitit requeues it (same slot)."""

    def __init__(self, call: WorkerCall):
        self.call = call

    def __call__(self, slot: int) -> dict:
        return self.call(worker_name(ENGINE, f"a{slot}"))

    def checkpoint(self, slot: int):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, slot)


def _executor(folder, cluster: Optional[str]):
    try:
        import submitit
    except ImportError:
        raise ScalingError('--engine slurm needs submitit: pip install "scaling[slurm]"') from None
    cluster = cluster or "slurm"
    if cluster not in CLUSTERS:
        raise ScalingError(f"--cluster {cluster!r}: expected one of {', '.join(CLUSTERS)}")
    if cluster == "slurm" and shutil.which("srun") is None:
        raise ScalingError("--engine slurm: srun not found, this is not a SLURM cluster "
                           "(--cluster local runs the array on this machine)")
    return submitit.AutoExecutor(folder=folder, cluster=cluster)


def submit(grid_path, out=None, *, array: int, partition: Optional[str] = None, gpus_per_task: int = 0,
           cpus_per_task: Optional[int] = None, time_limit=None, cluster: Optional[str] = None,
           slurm_parameters: Optional[dict] = None, **worker_options):
    """Submit the array; returns (sweep, jobs, started). ``slurm_parameters`` are passed to
    submitit (``slurm_account``, ``slurm_qos``, ``mem_gb``, ...)."""
    if array < 1:
        raise ScalingError(f"--array must be >= 1, got {array}")
    if gpus_per_task < 0:
        raise ScalingError(f"--gpus-per-task must be >= 0, got {gpus_per_task}")
    sweep = open_sweep(grid_path, out)  # validates the whole grid before anything is submitted
    sweep.root.mkdir(parents=True, exist_ok=True)
    sweep.targets()  # writes the manifest
    call = WorkerCall.make(grid_path, sweep.root, **worker_options)
    executor = _executor(sweep.root / LOG_DIR, cluster)
    params = dict(name=f"scaling-{sweep.plan.grid.name}", nodes=1, tasks_per_node=1,
                  timeout_min=parse_time(time_limit) if time_limit is not None else DEFAULT_TIME_MIN,
                  gpus_per_node=gpus_per_task, slurm_array_parallelism=array)
    if cpus_per_task is not None:
        params["cpus_per_task"] = cpus_per_task
    if partition:
        params["slurm_partition"] = partition
    params.update(slurm_parameters or {})
    executor.update_parameters(**params)
    jobs = executor.map_array(SlurmWorker(call), list(range(array)))
    return sweep, jobs, call.options["started"]


def run_slurm(grid_path, out=None, *, array: int, wait: bool = True, driver_poll_s: float = POLL_S,
              print_fn: Optional[Callable] = print, **kw) -> SweepOutcome:
    """Submit an array of ``array`` workers (``submit``); wait for it, or return at once."""
    sweep, jobs, started = submit(grid_path, out, array=array, **kw)
    report = Report(sweep.root, started, ENGINE, print_fn)
    report.say(f"submitted {len(jobs)} array task(s) ({', '.join(j.job_id for j in jobs[:3])}"
               f"{', ...' if len(jobs) > 3 else ''}) -> {sweep.root}; logs in {sweep.root / LOG_DIR}")
    if not wait:
        report.say(f"not waiting: scaling status {sweep.root}")
        return SweepOutcome(sweep.root, sweep.plan, {})
    try:
        while not all(j.done() for j in jobs):
            report.poll()
            time.sleep(driver_poll_s)
    except KeyboardInterrupt:
        report.say("interrupted: cancelling the array (unfinished runs resume next time)")
        for j in jobs:
            j.cancel(check=False)
        raise
    finally:
        report.poll(final=True)
    counts: dict = {}
    codes = []
    for j in jobs:
        try:
            result = j.result()
        except Exception as e:  # noqa: BLE001 - a task that failed for good is reported, not raised
            report.say(f"array task {j.job_id} failed: {type(e).__name__}: {' '.join(str(e).split())[:300]}")
            codes.append(1)
            continue
        codes.append(0)
        for k, v in (result or {}).items():
            counts[k] = counts.get(k, 0) + v
    return SweepOutcome(sweep.root, sweep.plan, counts, tuple(codes))
