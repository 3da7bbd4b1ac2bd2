"""``scaling sweep GRID --engine ray [--address ADDR] [--workers K] [--gpus-per-worker G]``.

K Ray tasks, each the one worker loop (``scaling.engines.call.WorkerCall`` ->
``scaling.sweep.runner.run_worker``) on the sweep directory, with a resource request
(``cpus_per_worker``, ``gpus_per_worker``, custom ``resources`` such as ``{"TPU": 4}``) so that
the cluster places them. Ray schedules; the sweep directory and its claims decide what runs:

- a task whose worker process or node dies is started again by Ray (``max_retries``); its runs'
  claims belong to a dead process (at once on the same host, after ``stale_after_s`` elsewhere),
  so the retry, or any other worker, takes them over and resumes them from their checkpoints,
  and a finished run (its ``status`` marker) never runs again;
- the driver reports from ``events.jsonl`` (``scaling.engines.progress``) and names every task
  that failed for good; the workers' own lines reach it through Ray's log forwarding;
- Ctrl-C cancels the tasks (a KeyboardInterrupt inside each: claims released, unfinished runs
  resume next time), waits ``CANCEL_GRACE_S``, then forces them; a local Ray instance started
  here is shut down. Each task has a process of its own (``max_calls=1``), which exits with it,
  so a claim whose release an interrupt cut short belongs to a dead process, stale at once.

With no ``address`` and no Ray already initialised in this process, a local instance is
started (every CPU and GPU of this machine). On a cluster every node needs this package
installed and the sweep directory on a shared filesystem.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from scaling.engines.call import WorkerCall, forwarded_env, worker_name
from scaling.engines.progress import Report
from scaling.errors import ScalingError
from scaling.sweep.runner import SweepOutcome, open_sweep

ENGINE = "ray"
MAX_RETRIES = 3  # restarts of a task whose worker process or node died
CANCEL_GRACE_S = 30.0  # after Ctrl-C: time the tasks get to stop before they are forced
POLL_S = 2.0  # how often the driver reads the sweep's events


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ScalingError('--engine ray needs Ray: pip install "scaling[ray]"') from None
    return ray


def ray_worker(call: WorkerCall, slot: int) -> dict:
    """The body of one Ray task: the worker loop, named for its slot, host and process."""
    return call(worker_name(ENGINE, f"w{slot}"))


def run_ray(grid_path, out=None, *, address: Optional[str] = None, workers: int = 1,
            cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0, resources: Optional[dict] = None,
            max_retries: int = MAX_RETRIES, driver_poll_s: float = POLL_S, print_fn: Optional[Callable] = print,
            init_kwargs: Optional[dict] = None, **worker_options) -> SweepOutcome:
    """Run the sweep on a Ray cluster (a local one when ``address`` is None); returns when every
    task has ended. ``worker_options`` are ``WorkerOptions`` fields and ``compile_cache``."""
    if workers < 1:
        raise ScalingError(f"--workers must be >= 1, got {workers}")
    if cpus_per_worker < 0 or gpus_per_worker < 0:
        raise ScalingError("--cpus-per-worker and --gpus-per-worker must be >= 0")
    sweep = open_sweep(grid_path, out)  # validates the whole grid before anything starts
    sweep.root.mkdir(parents=True, exist_ok=True)
    sweep.targets()  # writes the manifest
    call = WorkerCall.make(grid_path, sweep.root, **worker_options)
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, **{"include_dashboard": False, **(init_kwargs or {})})
    report = Report(sweep.root, call.options["started"], ENGINE, print_fn)
    task = ray.remote(max_calls=1)(ray_worker).options(
        num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, resources=dict(resources or {}),
        max_retries=max_retries, retry_exceptions=False, runtime_env={"env_vars": forwarded_env()})
    refs = [task.remote(call, i) for i in range(workers)]
    report.say(f"{workers} worker task(s) on {address or 'a local Ray instance'} -> {sweep.root}")
    try:
        results = _wait(ray, refs, report, driver_poll_s)
    except KeyboardInterrupt:
        report.say("interrupted: cancelling the worker tasks (unfinished runs resume next time)")
        _cancel(ray, refs)
        raise
    finally:
        report.poll(final=True)
        if started_here:
            ray.shutdown()
    counts: dict = {}
    for r in results:
        for k, v in (r if isinstance(r, dict) else {}).items():
            counts[k] = counts.get(k, 0) + v
    return SweepOutcome(sweep.root, sweep.plan, counts, tuple(0 if isinstance(r, dict) else 1 for r in results))


def _wait(ray, refs: list, report: Report, poll_s: float) -> list:
    """Each task's counts, or its exception when it failed for good; reports while waiting."""
    results: dict = {}
    pending = list(refs)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1, timeout=poll_s)
        report.poll()
        for ref in ready:
            slot = refs.index(ref)
            try:
                results[slot] = ray.get(ref)
            except ray.exceptions.RayError as e:  # the task raised, or its process died max_retries times
                results[slot] = e
                report.say(f"worker task {slot} failed: {type(e).__name__}: {' '.join(str(e).split())[:300]}")
    return [results[i] for i in range(len(refs))]


def _cancel(ray, refs: list) -> None:
    for ref in refs:
        ray.cancel(ref)
    deadline = time.time() + CANCEL_GRACE_S
    pending = list(refs)
    while pending and time.time() < deadline:
        _, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
    for ref in pending:
        ray.cancel(ref, force=True)

