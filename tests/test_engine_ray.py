"""``scaling sweep --engine ray``: the sweep's workers as Ray tasks on a local Ray instance (CPU).

Same steps table as the local engine, every run exactly once and every record intact, for the
NQM workload and a tiny LM grid, including when a Ray worker process is killed mid-run (Ray
retries the task; the claims let it take the dead worker's run over and resume it) and when the
driver is interrupted (the tasks stop, their claims are released, a rerun finishes the sweep).
"""

import _thread
import os
import signal
import threading
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402
import yaml  # noqa: E402

from scaling import rundir  # noqa: E402
from scaling.sweep import run_sweep, steps_rows  # noqa: E402
from scaling.sweep.locks import live_claims  # noqa: E402
from sweep_helpers import NQM_GRID, check_exactly_once, check_records_intact, events, run_dirs, write_grid  # noqa: E402

ray = pytest.importorskip("ray")
from scaling.engines.ray_engine import run_ray  # noqa: E402

FAST = dict(quiet=True, poll_s=0.05, heartbeat_s=0.2, stale_after_s=5.0, compile_cache=None)
SLOW_NQM = dict(models=[{"dim": 6000}], tokens=[2048, 8192], lrs=[0.1, 0.2, 0.4, 1.5], batch_sizes=[1, 2, 4, 16, 64])
LM_GRID = {
    "name": "lmray", "workload": "lm",
    "base": {"model": {"seq_len": 32}, "data": {"source": "default", "tokenizer": "bytes", "val_tokens": 2048},
             "optim": {"schedule": "constant"}, "ewa": {"half_lives_tokens": [2048]},
             "eval": {"points": 8, "geometric_points": 3, "batch_size": 32}, "log_every": 4,
             "checkpoint_every_tokens": 2048},
    "models": [{"name": "m", "d_model": 16, "n_layers": 1, "n_heads": 2}],
    "tokens": [8192], "batch_sizes": [4, 8], "lrs": [0.006], "seeds": [0],
    "reference_batch": 4, "target": "definition1", "max_tokens_factor": 3, "warmup_fraction": 0.1,
    **{k: v for k, v in NQM_GRID.items() if k == "protocol"},  # the protocol the sweep tests pin
}


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _table(root: Path) -> list:
    """The steps table without ``reason``: with two workers a run past the cap may be trained to
    its cap before a smaller batch's record would have implied it (same status, no steps)."""
    return [{k: v for k, v in row.items() if k != "reason"} for row in steps_rows(root)]


def _local(grid: Path, out: Path) -> list:
    run_sweep(grid, out=out, **FAST)
    return _table(out)


def _check(root: Path, expected_table: list) -> None:
    assert _table(root) == expected_table
    check_records_intact(root)
    check_exactly_once(root)
    assert all(rundir.read_status(d) for d in run_dirs(root))
    assert not live_claims(root / "locks")


class Killer(threading.Thread):
    """SIGKILLs the process holding the first claim whose run it has started (its ``start``
    event) and has ``ready(run_dir)``: a Ray worker, mid-run."""

    def __init__(self, root: Path, ready=lambda run_dir: True, timeout_s: float = 240.0):
        super().__init__(daemon=True)
        self.root, self.ready, self.deadline = root, ready, time.time() + timeout_s
        self.killed = None  # (run id, pid)

    def run(self) -> None:
        while self.killed is None and time.time() < self.deadline:
            for name, info in live_claims(self.root / "locks").items():
                run_dir = self.root / name
                started = any(e["event"] == "start" and e["run_id"] == name and e["worker"].endswith(f":{info.pid}")
                              for e in events(self.root))
                if info.pid not in (0, os.getpid()) and started and rundir.read_status(run_dir) is None \
                        and self.ready(run_dir):
                    os.kill(info.pid, signal.SIGKILL)
                    self.killed = (name, info.pid)
                    return
            time.sleep(0.005)


def test_nqm_on_ray_matches_the_local_engine(tmp_path):
    grid = write_grid(tmp_path / "g.yaml", tokens=[1024, 4096])
    expected = _local(grid, tmp_path / "local")
    lines = []
    outcome = run_ray(grid, tmp_path / "ray", workers=2, print_fn=lines.append, **FAST)
    assert outcome.exit_codes == (0, 0) and outcome.counts["ran"] == len(run_dirs(tmp_path / "ray")) == 70
    _check(tmp_path / "ray", expected)
    assert {e["worker"].split("@")[0] for e in events(tmp_path / "ray")} == {"ray-w0", "ray-w1"}
    assert lines[-1].startswith("[ray] 70 runs finished")  # the driver's report, from events.jsonl


def test_killed_ray_worker_is_retried_and_every_run_happens_once(tmp_path):
    grid = write_grid(tmp_path / "g.yaml", **SLOW_NQM)
    expected = _local(grid, tmp_path / "local")
    out = tmp_path / "ray"
    killer = Killer(out)
    killer.start()
    outcome = run_ray(grid, out, workers=2, print_fn=None, **FAST)
    killer.join()
    assert killer.killed is not None, "no run was in flight to kill"
    assert outcome.exit_codes == (0, 0)  # the killed task was retried by Ray and finished
    _check(out, expected)
    run_id, pid = killer.killed
    starts = [e for e in events(out) if e["event"] == "start" and e["run_id"] == run_id]
    assert len(starts) == 2 and starts[0]["worker"].endswith(f":{pid}")  # taken over once, finished once


def test_interrupted_driver_stops_its_tasks_and_a_rerun_finishes(tmp_path):
    grid = write_grid(tmp_path / "g.yaml", **SLOW_NQM)
    expected = _local(grid, tmp_path / "local")
    out = tmp_path / "ray"

    def interrupt_after_some_runs():
        while sum(e["event"] == "finish" for e in events(out)) < 5:
            time.sleep(0.01)
        _thread.interrupt_main()  # Ctrl-C in the driver

    threading.Thread(target=interrupt_after_some_runs, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run_ray(grid, out, workers=2, print_fn=None, driver_poll_s=0.2, **FAST)
    deadline = time.time() + 30
    while live_claims(out / "locks") and time.time() < deadline:
        time.sleep(0.05)
    assert not live_claims(out / "locks")  # released, or their worker process is gone
    unfinished = [d for d in run_dirs(out) if rundir.read_status(d) is None]
    assert len(run_dirs(out)) > len(unfinished)
    outcome = run_ray(grid, out, workers=2, print_fn=None, **FAST)
    assert outcome.exit_codes == (0, 0)
    _check(out, expected)


def test_lm_grid_on_ray_with_a_worker_killed_after_a_checkpoint(tmp_path):
    grid = tmp_path / "lm.yaml"
    grid.write_text(yaml.safe_dump(LM_GRID))
    expected = _local(grid, tmp_path / "local")
    out = tmp_path / "ray"
    killer = Killer(out, ready=lambda d: any((d / "checkpoints").glob("[0-9]*")))
    killer.start()
    outcome = run_ray(grid, out, workers=2, print_fn=None, **FAST)
    killer.join()
    assert killer.killed is not None and outcome.exit_codes == (0, 0)
    _check(out, expected)  # resumed from its checkpoint: the same S(B) and losses as one local worker
    run_id = killer.killed[0]
    assert _losses(out / run_id) == _losses(tmp_path / "local" / run_id)  # bit-identical after the resume


def _losses(run_dir: Path) -> list:
    keys = ("step", "train_loss", "grad_norm", "eval_loss", "eval_loss_ewa")
    return [{k: row.get(k) for k in keys} for row in rundir.read_metrics(run_dir)]
