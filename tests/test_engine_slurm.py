"""``scaling sweep --engine slurm``: a job array of workers through submitit, tested with its local
executor (``--cluster local``: the array tasks are processes on this machine). Same steps table as
the local engine, every run exactly once; ``--no-wait`` returns at once and ``scaling status``
follows the sweep to its end."""

import json
import shutil
import time

import pytest

from scaling.cli import main
from scaling.engines.slurm_engine import parse_time
from scaling.errors import ScalingError
from scaling.sweep import run_sweep, steps_rows
from sweep_helpers import check_exactly_once, check_records_intact, events, run_cli, write_grid

submitit = pytest.importorskip("submitit")

FAST_LOCKS = ["--heartbeat", "0.2", "--stale-after", "5", "--poll", "0.1", "--quiet"]
LOCAL_ARRAY = ["--engine", "slurm", "--array", "2", "--cluster", "local"]


def _table(root) -> list:
    """The steps table without ``reason`` (see tests/test_engine_ray.py: concurrent workers may
    train a run to its cap that one worker would have recorded as implied censored)."""
    return [{k: v for k, v in row.items() if k != "reason"} for row in steps_rows(root)]


def _local(grid, out) -> list:
    run_sweep(grid, out=out, quiet=True, poll_s=0.05, compile_cache=None)
    return _table(out)


def test_parse_time():
    assert [parse_time(t) for t in ("90", "90:00", "1:30:00", "2-0", "1-02:30", "0:00:30")] == \
        [90, 90, 90, 2880, 1590, 1]
    for bad in ("", "1h", "0", "1:2:3:4"):
        with pytest.raises(ScalingError):
            parse_time(bad)


def test_array_on_the_local_executor_matches_the_local_engine(tmp_path):
    grid = write_grid(tmp_path / "g.yaml", tokens=[1024, 4096])
    out = tmp_path / "slurm"
    r = run_cli("sweep", grid, "--out", out, *LOCAL_ARRAY, "--time", "10", *FAST_LOCKS, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[slurm] submitted 2 array task(s)" in r.stdout and "0 pending" in r.stdout
    assert _table(out) == _local(grid, tmp_path / "local")
    check_records_intact(out)
    check_exactly_once(out)
    assert {e["worker"].split("@")[0] for e in events(out)} <= {"slurm-a0", "slurm-a1"}
    assert sorted(p.name for p in (out / "slurm").glob("*_log.out"))  # each task's log beside the sweep


def test_no_wait_returns_and_status_follows(tmp_path):
    grid = write_grid(tmp_path / "g.yaml", tokens=[1024])
    out = tmp_path / "slurm"
    r = run_cli("sweep", grid, "--out", out, *LOCAL_ARRAY, "--no-wait", *FAST_LOCKS, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"scaling status {out}" in r.stdout
    deadline = time.time() + 180
    while time.time() < deadline:
        counts = json.loads(run_cli("status", out, "--json").stdout)["sweeps"][0]["counts"]
        if counts.get("pending", 1) == 0 and counts.get("running", 1) == 0:
            break
        time.sleep(0.5)
    assert counts["done"] + counts["censored"] == 35, counts
    check_records_intact(out)
    check_exactly_once(out)


def test_engine_flags_are_checked(tmp_path, capsys):
    grid = write_grid(tmp_path / "g.yaml", tokens=[1024])
    out = str(tmp_path / "o")
    if shutil.which("srun") is None:  # not on a SLURM cluster: the default cluster is refused, not faked
        assert main(["sweep", str(grid), "--out", out, "--engine", "slurm", "--array", "2"]) == 2
        assert "srun not found" in capsys.readouterr().err
    for argv in (["--array", "2"], ["--engine", "slurm"], ["--engine", "ray", "--partition", "p"],
                 ["--engine", "slurm", "--array", "0", "--cluster", "local"],
                 ["--engine", "slurm", "--array", "2", "--workers", "3"], ["--address", "x:1"]):
        assert main(["sweep", str(grid), "--out", out, *argv]) == 2, argv
        assert capsys.readouterr().err.count("\n") == 1  # one line naming the problem
