"""Workers: lock files, stale claims, concurrent workers, SIGKILL at random points and rerun."""

import json
import os
import random
import signal
import subprocess
import time

import pytest

from scaling import rundir
from scaling.sweep import expand, load_grid
from scaling.sweep.locks import live_claims, read_lock, try_claim
from scaling.sweep.protocol import SweepState
from scaling.sweep.worker import WorkerOptions, work
from scaling.workloads.nqm import NQMWorkload
from sweep_helpers import check_exactly_once, check_records_intact, env, events, run_dirs, scaling_cmd, write_grid

FAST_LOCKS = ["--heartbeat", "0.2", "--stale-after", "2", "--poll", "0.1", "--quiet"]


def _expected_ids(grid, out):
    sweep = SweepState(expand(load_grid(grid), NQMWorkload()), NQMWorkload(), out)
    known, waiting = sweep.known_runs()
    assert not waiting
    return {r.run_id for r in known}


def test_claim_is_exclusive_and_released(tmp_path):
    a = try_claim(tmp_path, "r1", "A", heartbeat_s=0.05)
    assert a is not None
    assert try_claim(tmp_path, "r1", "B") is None
    time.sleep(0.2)
    assert a.still_mine() and not a.lost and read_lock(tmp_path, "r1").age_s < 0.15  # heartbeat touches
    assert set(live_claims(tmp_path)) == {"r1"}
    a.release()
    assert read_lock(tmp_path, "r1") is None
    b = try_claim(tmp_path, "r1", "B")
    assert b is not None
    b.release()


def _foreign_lock(lock_dir, name, age_s, gen=0):
    lock_dir.mkdir(parents=True, exist_ok=True)
    path = lock_dir / f"{name}.{gen}"
    path.write_text(json.dumps({"token": "x", "host": "another-machine", "pid": 1, "worker": "ghost"}))
    t = time.time() - age_s
    os.utime(path, (t, t))
    return path


def test_stale_claim_taken_over_by_one_worker(tmp_path):
    _foreign_lock(tmp_path, "r1", age_s=10)
    assert try_claim(tmp_path, "r1", "B", stale_after_s=30) is None  # not stale yet
    b = try_claim(tmp_path, "r1", "B", stale_after_s=5, heartbeat_s=0.05)
    assert b is not None and b.path.name == "r1.1"
    assert try_claim(tmp_path, "r1", "C", stale_after_s=5) is None  # B's claim is fresh
    assert not (tmp_path / "r1.0").exists()
    b.release()


def test_dead_local_owner_is_stale_at_once(tmp_path):
    p = subprocess.Popen(["true"])
    p.wait()
    path = tmp_path / "r1.0"
    import socket

    path.write_text(json.dumps({"token": "x", "host": socket.gethostname(), "pid": p.pid}))
    assert try_claim(tmp_path, "r1", "B", stale_after_s=1000) is not None


def test_superseded_owner_notices(tmp_path):
    a = try_claim(tmp_path, "r1", "A", heartbeat_s=0.05)
    os.utime(a.path, (0, 0))
    a._stop.set()  # A stops beating (a hung worker)
    b = try_claim(tmp_path, "r1", "B", stale_after_s=1, heartbeat_s=0.05)
    assert b is not None and not a.still_mine()
    a.release()  # does not remove B's claim
    assert b.still_mine()
    b.release()


def test_worker_reclaims_stale_lock_of_a_run(tmp_path):
    grid = write_grid(tmp_path / "g.yaml", tokens=[1024], batch_sizes=[4, 8], lrs=[0.1, 0.2])
    out = tmp_path / "o"
    sweep = SweepState(expand(load_grid(grid), NQMWorkload()), NQMWorkload(), out)
    ref = sweep.known_runs()[0][0]
    stale_after = 1.5
    path = _foreign_lock(out / "locks", ref.run_id, age_s=0)  # a fresh claim by a crashed machine
    t0 = time.time()
    counts = work(sweep, WorkerOptions(quiet=True, poll_s=0.05, heartbeat_s=0.1, stale_after_s=stale_after))
    assert counts["ran"] == 4
    start = [e for e in events(out) if e["event"] == "start" and e["run_id"] == ref.run_id]
    assert len(start) == 1 and start[0]["time"] >= t0 + stale_after - 0.1  # only once stale
    assert rundir.read_status(ref.run_dir) == "done" and not path.exists()


def test_two_workers_never_run_the_same_run(tmp_path):
    grid = write_grid(tmp_path / "g.yaml", tokens=[1024, 2048, 4096])
    out = tmp_path / "o"
    cmd = scaling_cmd("sweep", grid, "--out", out, "--worker", *FAST_LOCKS)
    procs = [subprocess.Popen(cmd + ["--name", f"w{i}"], env=env()) for i in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    starts = [e for e in events(out) if e["event"] == "start"]
    ids = [e["run_id"] for e in starts]
    assert len(ids) == len(set(ids)) == 105  # every run started exactly once, by one worker
    assert {r.name for r in run_dirs(out)} == _expected_ids(grid, out)
    assert {e["worker"] for e in starts} == {"w0", "w1"}  # both did work
    check_records_intact(out)
    check_exactly_once(out)


def test_workers_option_spawns_processes(tmp_path):
    grid = write_grid(tmp_path / "g.yaml", tokens=[1024])
    out = tmp_path / "o"
    r = subprocess.run(scaling_cmd("sweep", grid, "--out", out, "--workers", "2", *FAST_LOCKS),
                       env=env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    starts = [e for e in events(out) if e["event"] == "start"]
    assert len(starts) == len({e["run_id"] for e in starts}) == 35
    assert "0 pending" in r.stdout


def test_sigkill_at_random_points_then_rerun(tmp_path):
    # a bigger NQM (dim 6000) so runs last long enough for kills to land inside them
    grid = write_grid(tmp_path / "g.yaml", models=[{"dim": 6000}], tokens=[2048, 8192],
                      lrs=[0.1, 0.2, 0.4, 1.5], batch_sizes=[1, 2, 4, 16, 64])
    out = tmp_path / "o"
    rng = random.Random(1234)
    cmd = scaling_cmd("sweep", grid, "--out", out, *FAST_LOCKS)
    kills = cut = 0

    def starts():
        return sum(e["event"] == "start" for e in events(out))

    for _ in range(5):
        goal = starts() + rng.randint(1, 4)  # kill soon after the k-th next run starts
        p = subprocess.Popen(cmd, env=env())
        deadline = time.time() + 60
        while p.poll() is None and starts() < goal and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.05))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
        ev = events(out)
        cut = max(cut, sum(e["event"] == "start" for e in ev) - sum(e["event"] == "finish" for e in ev))
    assert kills == 5 and cut >= 1  # at least one kill landed inside a run
    r = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    expected = _expected_ids(grid, out)
    assert {d.name for d in run_dirs(out)} == expected  # no stray or duplicate run directories
    assert all(rundir.read_status(out / i) for i in expected)
    check_records_intact(out)
    check_exactly_once(out)
    finishes = [e["run_id"] for e in events(out) if e["event"] == "finish"]
    assert len(finishes) == len(set(finishes))
    # one more rerun: nothing left to do, nothing started
    before = len(events(out))
    r = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and len(events(out)) == before
    # the same table, byte for byte, as a sweep never interrupted (implied censoring waits for the
    # smaller batch sizes to finish, so it does not depend on the order runs finished in)
    from scaling.sweep import run_sweep, steps_csv, steps_rows
    run_sweep(grid, out=tmp_path / "uninterrupted", quiet=True, compile_cache=None, poll_s=0.05)
    assert steps_csv(steps_rows(out)) == steps_csv(steps_rows(tmp_path / "uninterrupted"))


def test_workers_start_with_the_costliest_group(tmp_path):
    """Longest-processing-time first: the largest N x D group's runs are claimed first, each
    group's in planned order, so its chain of dependent runs does not finish alone at the end."""
    from scaling.sweep.worker import costliest_groups_first

    grid = write_grid(tmp_path / "g.yaml", tokens=[1024, 4096, 2048])
    sweep = SweepState(expand(load_grid(grid), NQMWorkload()), NQMWorkload(), tmp_path / "o")
    known, _ = sweep.known_runs()
    ordered = costliest_groups_first(sweep, known)
    tokens = {g.key: g.tokens for g in sweep.plan.groups}
    assert [tokens[r.spec.group] for r in ordered] == sorted((tokens[r.spec.group] for r in known), reverse=True)
    for key in tokens:  # stable: each group's runs keep the plan's order
        assert [r for r in ordered if r.spec.group == key] == [r for r in known if r.spec.group == key]
    work(sweep, WorkerOptions(max_runs=1, quiet=True, poll_s=0.01))
    [ran] = [r for r in run_dirs(tmp_path / "o") if rundir.read_status(r)]
    assert rundir.read_summary(ran)["tokens"] == 4096
