"""What a sweep directory accepts (issue 20, items 6-8): one plan (another grid refused, an
extension run on top), no writes through links planted in it, and locks that never stall it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time

import pytest

from scaling.cli import main
from scaling.sweep import locks
from scaling.sweep.protocol import MANIFEST
from scaling.sweep.records import read_sweep
from scaling.sweep.runner import open_sweep, run_sweep
from sweep_helpers import NQM_GRID, check_exactly_once, check_records_intact, run_dirs, write_grid


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweepdir")
    grid = write_grid(tmp / "g.yaml")
    run_sweep(grid, out=tmp / "s", quiet=True)
    return grid, tmp / "s"


@pytest.fixture()
def sweep(finished, tmp_path):
    grid, root = finished
    shutil.copytree(root, tmp_path / "s")
    return grid, tmp_path / "s"


def one_error(capsys, command="sweep") -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"scaling {command}: error: ") and "\n" not in err, err
    return err


@pytest.mark.parametrize("change,why", [
    ({"lrs": [0.05, 0.1, 0.2, 0.4]}, "lrs changed"),
    ({"lrs": NQM_GRID["lrs"] + [1.6]}, "lrs changed"),
    ({"seeds": [0, 1]}, "seeds changed"),
    ({"base": {"p": 2.0, "evals_per_octave": 8}}, "base changed"),
    ({"batch_sizes": [1, 2, 4, 8, 16, 32]}, "B=64 lr=0.05 seed=0 (chase) is dropped"),
    ({"tokens": [1024]}, "dim32@D4096 (N=32, D=4096) is dropped"),
    ({"models": [{"name": "dim32", "dim": 32, "p": 1.5}]}, "changes its config (another run id)"),
    ({"name": "other"}, "it holds sweep 't', this grid is 'other'"),
    ({"protocol": "adaptive"}, "protocol changed"),
])
def test_another_grid_is_refused(sweep, tmp_path, capsys, change, why):
    _, root = sweep
    before = {p.name for p in root.iterdir()}, (root / MANIFEST).read_text()
    other = write_grid(tmp_path / "other.yaml", **change)
    assert main(["sweep", str(other), "--out", str(root), "--quiet"]) == 2
    err = one_error(capsys)
    assert f"{root} holds the sweep of another grid (" in err and why in err
    assert main(["sweep", str(other), "--out", str(root), "--dry-run"]) == 2  # the dry run says so too
    assert ({p.name for p in root.iterdir()}, (root / MANIFEST).read_text()) == before


def test_an_extension_runs_only_its_new_runs_and_stays_one_plan(sweep, tmp_path, capsys):
    grid, root = sweep
    old = {d.name for d in run_dirs(root)}
    earlier = open_sweep(grid, root)  # a worker of the grid as it was, still running
    wider = write_grid(tmp_path / "wider.yaml", batch_sizes=NQM_GRID["batch_sizes"] + [128],
                       tokens=NQM_GRID["tokens"] + [2048], description="one more batch size and data size")
    assert main(["sweep", str(wider), "--out", str(root), "--quiet"]) == 0
    new = {d.name for d in run_dirs(root)} - old
    check_records_intact(root)
    check_exactly_once(root)  # no old run trained again
    cells = [(r.info["group"], r.info["phase"], r.info["batch_size"], r.info["lr"], r.info["seed"])
             for r in read_sweep(root).runs]
    assert len(cells) == len(set(cells))  # no cell counted twice
    added = {(r.info["group"], r.info["batch_size"]) for r in read_sweep(root).runs if r.run_id in new}
    assert all(g.endswith("@D2048") or b == 128 for g, b in added) and any(b == 128 for _, b in added)
    manifest = json.loads((root / MANIFEST).read_text())
    assert len(manifest["grids"]) == 2
    # the earlier grid's worker adds its targets but never writes its plan back
    earlier.write_manifest({})
    assert json.loads((root / MANIFEST).read_text())["grid"] == manifest["grid"]
    # and the earlier grid started now is refused: it would drop the new runs
    capsys.readouterr()
    assert main(["sweep", str(grid), "--out", str(root), "--quiet"]) == 2
    assert "is dropped" in one_error(capsys)


def test_links_planted_in_a_sweep_directory_are_never_written_through(sweep, tmp_path, capsys):
    grid, root = sweep
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = run_dirs(root)[0]
    shutil.rmtree(victim)
    victim.symlink_to(outside, target_is_directory=True)  # a run directory
    assert main(["sweep", str(grid), "--out", str(root), "--quiet"]) == 2
    assert f"{victim}: is a symbolic link inside the sweep directory" in one_error(capsys)
    assert list(outside.iterdir()) == []
    victim.unlink()
    for name, make in (("events.jsonl", lambda p: p.write_text("")), ("locks", lambda p: p.mkdir())):
        target = outside / name
        make(target)
        planted = root / name
        if planted.is_dir():
            planted.rmdir()
        else:
            planted.unlink()
        planted.symlink_to(target)
        assert main(["sweep", str(grid), "--out", str(root), "--quiet"]) == 2
        assert f"{planted}: is a symbolic link" in one_error(capsys)
        planted.unlink()
    assert (outside / "events.jsonl").read_text() == "" and list((outside / "locks").iterdir()) == []
    run = run_dirs(root)[0]  # a file inside a run directory
    (run / "status").unlink()
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").symlink_to(outside / "events.jsonl")
    assert main(["sweep", str(grid), "--out", str(root), "--quiet"]) == 2
    assert "metrics.jsonl: is a symbolic link" in one_error(capsys)
    assert (outside / "events.jsonl").read_text() == ""


def test_dead_and_ownerless_locks_never_stall_and_are_cleaned(sweep):
    grid, root = sweep
    state = open_sweep(grid, root)
    victims = run_dirs(root)[:2]
    for d in victims:
        shutil.rmtree(d)
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock_dir = root / "locks"
    (lock_dir / f"{victims[0].name}.0").write_text("")  # a worker killed between creating and writing it
    (lock_dir / f"{victims[1].name}.0").write_text(json.dumps({"token": "t", "host": socket.gethostname(),
                                                               "pid": dead.pid, "worker": "dead"}))
    (lock_dir / "0123456789ab.0").write_text("")  # a claim left on a run that has finished since
    t0 = time.time()
    run_sweep(grid, out=root, quiet=True, stale_after_s=locks.DEFAULT_STALE_AFTER_S, poll_s=0.2)
    assert time.time() - t0 < locks.DEFAULT_STALE_AFTER_S / 2  # not a --stale-after wait
    assert all((d / "status").is_file() for d in victims)
    assert list(lock_dir.iterdir()) == []
    assert state.root == root


def test_a_claim_file_always_names_its_owner(tmp_path):
    claim = locks.try_claim(tmp_path, "r", "me", heartbeat_s=0.05)
    info = locks.read_lock(tmp_path, "r")
    assert info.token == claim.token and info.pid > 0 and not info.stale(locks.DEFAULT_STALE_AFTER_S)
    assert locks.try_claim(tmp_path, "r", "other") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.0"]  # no temporary file left
    claim.release()
