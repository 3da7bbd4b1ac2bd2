"""The two-phase protocol in one process, on real NQM runs: targets, chase runs, the steps
table against the exact NQM sweep, status, reruns, failure isolation."""

import csv
import json
import math

import numpy as np
import pytest

from scaling import rundir
from scaling.cli import main
from scaling.nqm import NQM, Optimizer, exact_sweep
from scaling.store import read_json
from scaling.sweep import expand, load_grid, run_sweep, status, steps_rows, write_steps_csv
from scaling.sweep.protocol import SweepState
from scaling.sweep.worker import WorkerOptions, work
from scaling.workloads.nqm import NQMWorkload
from sweep_helpers import NQM_GRID, check_exactly_once, check_records_intact, events, write_grid

FAST = dict(quiet=True, compile_cache=None, poll_s=0.05)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    grid = write_grid(tmp / "g.yaml")
    res = run_sweep(grid, out=tmp / "out", **FAST)
    return tmp, grid, res


def test_every_run_finished_once(finished):
    tmp, grid, res = finished
    out = tmp / "out"
    assert res.counts["ran"] == len(res.plan.runs) == 70
    assert len([p for p in out.iterdir() if (p / "config.json").exists()]) == 70
    check_records_intact(out)
    check_exactly_once(out)


def test_one_identity_per_run(finished):
    """Directory name == config.json run_id == summary.json run_id == the id of its config."""
    from scaling.identity import run_id
    from scaling.workloads.nqm import NQMWorkload

    tmp, _, res = finished
    dirs = [p for p in (tmp / "out").iterdir() if (p / "config.json").exists()]
    assert len(dirs) == len(res.plan.runs)
    for d in dirs:
        config, summary = rundir.read_config(d), rundir.read_summary(d)
        spec = {k: v for k, v in config["config"].items() if k != "derived"}
        assert d.name == config["run_id"] == summary["run_id"] == run_id("nqm", NQMWorkload().build_config(spec))


def test_targets_are_definition1(finished):
    tmp, grid, res = finished
    manifest = read_json(tmp / "out" / "sweep.json")
    for g in manifest["groups"]:
        exact = exact_sweep(NQM(dim=32), Optimizer(), NQM_GRID["batch_sizes"], NQM_GRID["lrs"], g["tokens"], 4,
                            cap_factor=4)
        assert g["target"] == pytest.approx(exact.target, rel=1e-12)
        assert g["target_rule"] == "definition1"


def test_steps_table_matches_exact_sweep(finished, tmp_path):
    tmp, grid, res = finished
    rows = steps_rows(tmp / "out")
    assert len(rows) == 70
    assert list(rows[0])[:9] == ["params", "tokens", "batch_size", "steps", "seq_len", "lr", "seed",
                                 "target_loss", "status"]
    for d in NQM_GRID["tokens"]:
        exact = exact_sweep(NQM(dim=32), Optimizer(), NQM_GRID["batch_sizes"], NQM_GRID["lrs"], d, 4, cap_factor=4)
        for b, s_exact in zip(exact.batch_sizes, exact.steps_to_target):
            cell = [r for r in rows if r["tokens"] == d and r["batch_size"] == b]
            assert len(cell) == len(NQM_GRID["lrs"])
            done = [r for r in cell if r["status"] == "done"]
            if not np.isfinite(s_exact):
                assert not done
                continue
            best = min(done, key=lambda r: r["steps"])
            assert best["steps"] == pytest.approx(s_exact, rel=1e-9)
            assert all(r["best_lr"] == best["lr"] for r in cell)
            lrs = sorted(NQM_GRID["lrs"])
            assert (best["lr"] in (lrs[0], lrs[-1])) == (cell[0]["lr_edge"] in ("low", "high"))
            for r in cell:
                assert (r["steps"] is None) == (r["status"] != "done")
    # the reference batch: the lr that set L* reaches it at its last step, D / B_ref
    manifest = read_json(tmp / "out" / "sweep.json")
    for g in manifest["groups"]:
        [r] = [r for r in rows if r["tokens"] == g["tokens"] and r["batch_size"] == 4
               and r["lr"] == g["reference_lr"]]
        assert r["phase"] == "reference" and r["steps"] == pytest.approx(g["tokens"] / 4)
    # written atomically and readable by the analysis
    out = tmp_path / "steps.csv"
    write_steps_csv(rows, out)
    from scaling.analysis import load_steps

    table = load_steps(out)
    assert len(table.groups) == 2
    for g in table.groups:
        assert all(np.diff(g.steps) < 0)  # steps to target fall with batch size


def test_one_rule_finds_sweeps_for_the_cli_and_the_figures(finished, tmp_path):
    """sweep.json, run directories or an exported steps.csv make a sweep directory, at depth 1 or
    2; the CLI (steps, status) and the figures (plots.sources.discover) find the same ones."""
    import shutil

    from scaling.plots import sources
    from scaling.sweep.records import find_sweeps

    tmp, _, _ = finished
    root = tmp_path / "runs"
    shutil.copytree(tmp / "out", root / "t")
    (root / "grids").mkdir()
    (root / "study" / "case").mkdir(parents=True)
    write_steps_csv(steps_rows(tmp / "out"), root / "study" / "case" / "steps.csv")  # a table, no runs
    assert find_sweeps(root) == [root / "study" / "case", root / "t"]
    assert find_sweeps(root / "t") == [root / "t"]  # a sweep's own run directories are not sweeps
    assert sorted(s.path for s in sources.discover(root)) == find_sweeps(root)
    assert [s.name for s in status(root)] == ["t"]  # the table-only directory has no state
    assert len(steps_rows(root)) == len(steps_rows(tmp / "out"))


def test_cbs_reads_a_runs_directory_as_its_exported_table(finished, tmp_path, capsys):
    """``scaling cbs RUNS`` == ``scaling cbs RUNS/steps.csv`` (the analysis itself reads tables only)."""
    tmp, _, _ = finished
    write_steps_csv(steps_rows(tmp / "out"), tmp_path / "steps.csv")
    results = []
    for source in (tmp / "out", tmp_path / "steps.csv"):
        capsys.readouterr()
        assert main(["cbs", str(source), "--json", "--resamples", "50", "--reference-batch", "4"]) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert [g["cbs"] for g in results[0]["groups"]] == [g["cbs"] for g in results[1]["groups"]]
    assert [g["cbs_ci"] for g in results[0]["groups"]] == [g["cbs_ci"] for g in results[1]["groups"]]


def test_cli_steps_and_status(finished, tmp_path, capsys):
    tmp, grid, res = finished
    assert main(["steps", str(tmp / "out"), "-o", str(tmp_path / "s.csv")]) == 0
    with open(tmp_path / "s.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 70 and {r["status"] for r in table} <= {"done", "censored", "diverged"}
    capsys.readouterr()
    assert main(["status", str(tmp / "out")]) == 0
    text = capsys.readouterr().out
    assert "0 pending" in text and "dim32@D1024" in text and "ETA" in text
    [st] = status(tmp / "out")
    assert sum(st.counts.values()) == 70 and st.counts["pending"] == 0 and st.tokens_spent > 0
    assert main(["steps", str(tmp_path / "nope")]) == 2


def test_rerun_does_nothing(finished):
    tmp, grid, res = finished
    before = len(events(tmp / "out"))
    again = run_sweep(grid, out=tmp / "out", **FAST)
    assert again.counts["ran"] == 0 and len(events(tmp / "out")) == before


def test_pending_status_before_running(tmp_path):
    grid = write_grid(tmp_path / "g.yaml")
    run_sweep(grid, out=tmp_path / "o", max_runs=3, **FAST)
    [st] = status(tmp_path / "o")
    assert st.counts["done"] == 3 and st.counts["pending"] == 67
    rows = steps_rows(tmp_path / "o")
    assert sum(r["status"] == "pending" for r in rows) == 67


class CrashingNQM(NQMWorkload):
    """The real NQM workload, except that batch size 16 raises (fault injection)."""

    def run(self, config, run_dir, *, progress=False):
        if config.batch_size == 16:
            raise RuntimeError("injected crash at B=16")
        return super().run(config, run_dir, progress=progress)


def test_failures_are_isolated_and_retried_next_time(tmp_path):
    grid = load_grid(write_grid(tmp_path / "g.yaml", tokens=[1024], lrs=[0.1, 0.4, 3.0]))
    sweep = SweepState(expand(grid, CrashingNQM()), CrashingNQM(), tmp_path / "o")
    counts = work(sweep, WorkerOptions(quiet=True, poll_s=0.05))
    assert counts["failed"] == 3 and counts["ran"] == 21  # B=16 x 3 lrs failed; the rest ran
    rows = steps_rows(tmp_path / "o")
    failed = [r for r in rows if r["status"] == "failed"]
    assert {r["batch_size"] for r in failed} == {16} and "injected crash" in failed[0]["reason"]
    assert any(r["status"] == "diverged" for r in rows)  # lr 3 > 2/h_max: diverged, not censored
    assert all(r["status"] != "censored" for r in rows if r["lr"] == 3.0)
    err = [d for d in (tmp_path / "o").iterdir() if (d / "error.txt").exists()]
    assert len(err) == 3 and "RuntimeError" in (err[0] / "error.txt").read_text()
    # the same worker does not retry; a later invocation (the rerun) does, with the real workload
    assert work(sweep, WorkerOptions(quiet=True, poll_s=0.05, started=0.0))["ran"] == 0
    fixed = SweepState(expand(grid, NQMWorkload()), NQMWorkload(), tmp_path / "o")
    counts = work(fixed, WorkerOptions(quiet=True, poll_s=0.05))
    assert counts["ran"] == 3 and counts.get("failed", 0) == 0
    assert not any(r["status"] == "failed" for r in steps_rows(tmp_path / "o"))
    check_records_intact(tmp_path / "o")


def test_blocked_group_when_every_reference_run_diverges(tmp_path):
    grid = write_grid(tmp_path / "g.yaml", tokens=[1024], lrs=[3.0, 5.0], batch_sizes=[4, 8])
    res = run_sweep(grid, out=tmp_path / "o", **FAST)
    assert res.counts["ran"] == 2 and res.counts["diverged"] == 2  # chase runs never start
    [st] = status(tmp_path / "o")
    assert st.counts["pending"] == 2 and st.counts["diverged"] == 2


def test_explicit_target(tmp_path):
    grid = write_grid(tmp_path / "g.yaml", tokens=[1024], reference_batch=None, target=0.2)
    res = run_sweep(grid, out=tmp_path / "o", **FAST)
    assert res.counts["ran"] == 35
    rows = steps_rows(tmp_path / "o")
    assert {r["target_loss"] for r in rows} == {0.2} and {r["phase"] for r in rows} == {"chase"}
    assert any(r["status"] == "done" for r in rows)
    assert all(math.isfinite(r["steps"]) for r in rows if r["status"] == "done")


def test_batch_sizes_past_a_fully_censored_one_are_recorded_without_training(tmp_path):
    """Once every lr at some B hits the token cap, the larger batch sizes are recorded censored
    without training (tokens to target grow with B) -- and the exact sweep agrees they would be."""
    grid = write_grid(tmp_path / "g.yaml", max_tokens_factor=1, tokens=[1024])
    run_sweep(grid, out=tmp_path / "out", **FAST)
    rows = steps_rows(tmp_path / "out")
    by_b = {}
    for r in rows:
        if r["phase"] == "chase":
            by_b.setdefault(r["batch_size"], []).append(r)
    codes = {r["run_id"]: rundir.read_run_summary(tmp_path / "out" / r["run_id"]).censored_by for r in rows}
    full = [b for b in sorted(by_b) if all(r["status"] == "censored" and codes[r["run_id"]] == "cap"
                                           for r in by_b[b])]
    assert full, "the grid must have a batch size where every lr hits the cap"
    later = [b for b in sorted(by_b) if b > full[0]]
    assert later
    for b in sorted(by_b):
        implied = [codes[r["run_id"]] == "implied" for r in by_b[b]]
        assert all(implied) if b in later else not any(implied), b
    exact = exact_sweep(NQM(dim=32), Optimizer(), NQM_GRID["batch_sizes"], NQM_GRID["lrs"], 1024, 4, cap_factor=1)
    for b, s in zip(exact.batch_sizes, exact.steps_to_target):
        if b in later:
            assert s is None or not math.isfinite(s), b
    check_records_intact(tmp_path / "out")
