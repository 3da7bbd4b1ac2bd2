"""protocol: adaptive -- the lr search per batch size, racing, and its determinism (NQM: exact, ms a run)."""

import json
import math
import random
import signal
import subprocess
import time

import pytest

from scaling import rundir
from scaling.cli import main
from scaling.sweep import run_sweep
from scaling.sweep import search
from scaling.sweep.export import steps_rows
from sweep_helpers import check_exactly_once, check_records_intact, env, events, run_dirs, scaling_cmd, write_grid

FAST = dict(quiet=True, compile_cache=None, poll_s=0.05)
FAST_LOCKS = ["--heartbeat", "0.2", "--stale-after", "2", "--poll", "0.1", "--quiet"]


# --- the pure search -----------------------------------------------------------------------
def _results(table):
    """result(i, cap) from {index: Outcome}; missing indices are unfinished."""
    asked = {}

    def result(i, cap):
        asked[i] = cap
        return table.get(i)
    return result, asked


def test_reference_search_widens_until_the_best_is_interior():
    losses = [5.0, 4.0, 3.0, 2.5, 2.0, 2.2, 9.0]  # best at index 4
    table = {i: search.Outcome(loss=v) for i, v in enumerate(losses)}
    result, asked = _results(table)
    s = search.reference_search(7, 2, result)
    assert s.done and s.best == 4 and s.reason.endswith(search.INTERIOR)
    assert sorted(asked) == [1, 2, 3, 4, 5]  # started at 1-3, moved up while the best was at its edge
    # with index 5 unfinished the search waits, asking for nothing new
    partial = {i: o for i, o in table.items() if i != 5}
    s = search.reference_search(7, 2, _results(partial)[0])
    assert not s.done and "waiting" in s.reason and set(s.cells) == {1, 2, 3, 4, 5}


def test_chase_search_races_against_the_best_so_far():
    steps = {0: 400.0, 1: 300.0, 2: 200.0, 3: 150.0, 4: 180.0}
    result, asked = _results({i: search.Outcome(steps=v) for i, v in steps.items()})
    s = search.chase_search(6, 2, result)
    assert s.done and s.best == 3 and s.winner_steps == 150.0 and s.reason.endswith(search.INTERIOR)
    assert asked == {2: None, 1: 200.0, 3: 200.0, 4: 150.0}  # each wave capped at the fastest before it


def test_chase_search_with_no_run_at_the_target_follows_the_final_loss():
    table = {0: search.Outcome(loss=3.0), 1: search.Outcome(loss=2.0), 2: search.Outcome(loss=2.5),
             3: search.Outcome(loss=2.9)}
    s = search.chase_search(4, 2, _results(table)[0])
    assert s.done and not s.reached and s.best == 1 and "no lr reached" in s.reason


def test_a_diverged_start_steps_down():
    table = {2: search.Outcome(loss=math.inf), 1: search.Outcome(steps=50.0), 0: search.Outcome(steps=80.0)}
    s = search.chase_search(3, 2, _results(table)[0])
    assert s.done and s.best == 1 and set(s.cells) == {0, 1, 2}


def test_flattened_and_predictions():
    assert search.flattened([8, 16, 32], [100.0, 95.0, 92.0])
    assert not search.flattened([8, 16, 32], [100.0, 60.0, 58.0])
    assert not search.flattened([8, 16], [100.0, 99.0])
    lrs = [0.01 * 2**k for k in range(6)]
    assert search.start_index(lrs, None) in (2, 3) and search.start_index(lrs, 0.04) == 2
    assert search.shifted(2, lrs, 8, 32, 0.5) == 3 and search.shifted(2, lrs, 8, 32, 0.0) == 2
    assert search.shifted(5, lrs, 8, 64, 1.0) == 5  # clipped to the lattice


# --- on a real sweep -------------------------------------------------------------------------
def _best_steps(rows):
    out = {}
    for r in rows:
        if r["status"] == "done" and r["steps"] is not None:
            k = (r["params"], r["tokens"], r["batch_size"])
            out[k] = min(out.get(k, math.inf), r["steps"])
    return out


def _tokens(root):
    return sum(rundir.read_summary(d).get("final_tokens") or 0 for d in run_dirs(root))


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("adaptive")
    out = {}
    for protocol in ("grid", "adaptive"):
        grid = write_grid(tmp / f"{protocol}.yaml", protocol=protocol, name=protocol, tokens=[1024, 4096, 16384])
        run_sweep(grid, out=tmp / protocol, **FAST)
        out[protocol] = tmp / protocol
    return out


def test_same_steps_to_target_for_fewer_tokens(both):
    grid, adaptive = (_best_steps(steps_rows(both[p])) for p in ("grid", "adaptive"))
    assert set(adaptive) <= set(grid) and len(adaptive) >= len(grid) - 2
    for key, s in adaptive.items():
        assert s == pytest.approx(grid[key], rel=1e-12), key  # S(B) is the grid's minimum over lrs
    assert len(run_dirs(both["adaptive"])) < 0.7 * len(run_dirs(both["grid"]))
    assert _tokens(both["adaptive"]) < 0.6 * _tokens(both["grid"])


def test_every_search_finished_and_says_why(both):
    doc = json.loads((both["adaptive"] / "search.json").read_text())
    assert doc["pending"] == []
    for group in doc["groups"].values():
        assert group["reference"]["done"] and group["reference"]["reason"].startswith("best final loss")
        for chain in group["chase"].values():
            for b, s in chain.items():
                assert s["done"] and (s.get("not_run") or s["reason"]), b


def test_raced_runs_stop_as_outpaced_at_the_first_eval_past_the_best(both):
    raced = [d for d in run_dirs(both["adaptive"]) if rundir.read_config(d)["config"].get("race_steps")]
    assert raced
    outpaced = [d for d in raced if rundir.read_summary(d).get("censored_by") == "outpaced"]
    assert outpaced
    for d in outpaced:
        cap = rundir.read_config(d)["config"]["race_steps"]
        steps = [r["step"] for r in rundir.read_metrics(d)]
        assert steps[-1] >= cap and (len(steps) < 2 or steps[-2] < cap), d


def test_dry_run_shows_the_first_wave(tmp_path, capsys):
    grid = write_grid(tmp_path / "g.yaml", protocol="adaptive")
    assert main(["sweep", str(grid), "--out", str(tmp_path / "o"), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "first wave (6 runs" in text and "at most" in text  # 3 lrs at B_ref x 2 data sizes
    assert not (tmp_path / "o").exists()


def test_sigkill_and_two_workers_give_the_same_runs(tmp_path):
    """kill -9 at random points, then two workers finish it: the same runs, each exactly once,
    and the same steps table as an uninterrupted sweep."""
    grid = write_grid(tmp_path / "g.yaml", protocol="adaptive", models=[{"dim": 6000}], tokens=[2048, 8192],
                      lrs=[0.05, 0.1, 0.2, 0.4, 1.5], batch_sizes=[1, 2, 4, 16, 64])
    ref = tmp_path / "ref"
    run_sweep(grid, out=ref, **FAST)
    out = tmp_path / "o"
    cmd = scaling_cmd("sweep", grid, "--out", out, *FAST_LOCKS)
    rng = random.Random(7)
    for _ in range(4):
        goal = sum(e["event"] == "start" for e in events(out)) + rng.randint(1, 3)
        p = subprocess.Popen(cmd, env=env())
        deadline = time.time() + 60
        while p.poll() is None and sum(e["event"] == "start" for e in events(out)) < goal and time.time() < deadline:
            time.sleep(0.01)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait()
    procs = [subprocess.Popen(cmd + ["--worker", "--name", f"w{i}"], env=env()) for i in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    assert {d.name for d in run_dirs(out)} == {d.name for d in run_dirs(ref)}
    check_records_intact(out)
    check_exactly_once(out)
    key = lambda r: (r["params"], r["tokens"], r["batch_size"], r["lr"], r["run_id"])  # noqa: E731
    a = sorted(steps_rows(out), key=key)
    b = sorted(steps_rows(ref), key=key)
    assert [(r["run_id"], r["status"], r["steps"]) for r in a] == [(r["run_id"], r["status"], r["steps"]) for r in b]


def test_refine_adds_midpoints_around_the_cbs(tmp_path):
    """refine: 1 adds the geometric midpoint (on multiples of B/2) of the interval that brackets
    the CBS estimate of each group's measured S(B), searched like any chase batch size."""
    grid = write_grid(tmp_path / "g.yaml", protocol="adaptive", refine=1, tokens=[1024])
    run_sweep(grid, out=tmp_path / "o", **FAST)
    chain = json.loads((tmp_path / "o" / "search.json").read_text())["groups"]["dim32@D1024"]["chase"]["seed 0"]
    refined = {b: s for b, s in chain.items() if "refine" in s}
    assert list(refined) == ["B=6"] and refined["B=6"]["done"]  # the CBS (~7) lies in [4, 8]
    best = _best_steps(steps_rows(tmp_path / "o"))
    s = {b: v for (_, _, b), v in best.items()}
    assert s[4] > s[6] > s[8]  # S(B) falls through the new point
