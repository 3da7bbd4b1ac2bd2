"""Shared pieces of the sweep tests: small NQM grids (runs take milliseconds) and record checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from scaling import rundir
from scaling.store import read_jsonl

NQM_GRID = {
    "name": "t",
    "workload": "nqm",
    "base": {"p": 1.0, "evals_per_octave": 8},
    "models": [{"dim": 32}],
    "tokens": [1024, 4096],
    "batch_sizes": [1, 2, 4, 8, 16, 32, 64],
    "lrs": [0.05, 0.1, 0.2, 0.4, 0.8],
    "seeds": [0],
    "reference_batch": 4,
    "target": "definition1",
    "max_tokens_factor": 4,
    "protocol": "grid",  # these tests count every cell; tests/test_sweep_adaptive.py runs the search
}


def write_grid(path: Path, **changes) -> Path:
    grid = {**NQM_GRID, **changes}
    grid = {k: v for k, v in grid.items() if v is not None}
    Path(path).write_text(yaml.safe_dump(grid))
    return Path(path)


def scaling_cmd(*args) -> list:
    return [sys.executable, "-m", "scaling", *map(str, args)]


def env() -> dict:
    e = dict(os.environ)
    e["JAX_PLATFORMS"] = "cpu"
    return e


def run_cli(*args, timeout=120):
    return subprocess.run(scaling_cmd(*args), capture_output=True, text=True, env=env(), timeout=timeout)


def run_dirs(root: Path) -> list:
    return sorted(p for p in Path(root).iterdir() if p.is_dir() and (p / rundir.CONFIG).exists())


def check_records_intact(root: Path) -> None:
    """Every run directory: parseable config, finished status matching its summary, metrics
    rows complete and strictly increasing in step (a resumed run never duplicates rows)."""
    for d in run_dirs(root):
        json.loads((d / rundir.CONFIG).read_text())
        status = rundir.read_status(d)
        assert status in rundir.STATUSES, d
        summary = json.loads((d / rundir.SUMMARY).read_text())
        assert summary["status"] == status
        text = (d / rundir.METRICS).read_text() if (d / rundir.METRICS).exists() else ""
        assert text == "" or text.endswith("\n")
        steps = [r["step"] for r in read_jsonl(d / rundir.METRICS)]
        assert all(a < b for a, b in zip(steps, steps[1:])), d


def events(root: Path) -> list:
    p = Path(root) / "events.jsonl"
    return read_jsonl(p) if p.exists() else []


def check_exactly_once(root: Path) -> None:
    """No run was finished twice, and no run was started after it had finished."""
    finished = {}
    for e in events(root):
        if e["event"] == "start":
            assert e["run_id"] not in finished, f"run {e['run_id']} started again after finishing"
        elif e["event"] == "finish":
            assert e["run_id"] not in finished, f"run {e['run_id']} finished twice"
            finished[e["run_id"]] = e
