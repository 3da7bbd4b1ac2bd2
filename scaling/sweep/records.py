"""Read a sweep directory back (no workload, no JAX): where sweeps are, manifest, runs, states.

The one rule for what a sweep directory is (``is_sweep_dir``; the CLI and the figures both
find sweeps with ``find_sweeps``): a directory holding the manifest ``sweep.json``, run
directories (``scaling.rundir``), or an exported steps table ``steps.csv`` (the NQM study
writes only that). Search stops at a sweep: its own subdirectories are not searched.

States: ``done``, ``censored``, ``diverged``, ``failed`` (from the run's status marker),
``running`` (no marker, live claim), ``pending`` (not started, interrupted, or waiting for its
group's target).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from scaling import rundir
from scaling.errors import ScalingError
from scaling.store import read_json
from scaling.sweep import locks
from scaling.sweep.protocol import EVENTS, LOCKS, MANIFEST, RUN_INFO, SEARCH

STATES = ("done", "running", "failed", "censored", "diverged", "pending")
TAIL_BYTES = 8192  # enough for the last metrics row
STEPS_FILE = "steps.csv"  # a sweep's exported steps table (``scaling steps SWEEP -o SWEEP/steps.csv``)
SEARCH_DEPTH = 2  # runs/<sweep>, or one level deeper (runs/nqm_study/<case>)


@dataclass
class RunRecord:
    run_id: Optional[str]  # None: a planned run not started (its id may need L*)
    run_dir: Optional[Path]
    state: str
    info: dict  # group, model, phase, params, tokens, batch_size, lr, seed, target_loss
    summary: Optional[dict] = None
    tokens_spent: float = 0.0


@dataclass
class SweepRecords:
    root: Path
    manifest: dict
    runs: list = field(default_factory=list)
    events: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.manifest.get("name", self.root.name)

    def groups(self) -> list:
        return self.manifest.get("groups", [])


def _last_row(path: Path) -> Optional[dict]:
    import json

    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - TAIL_BYTES))
            lines = f.read().decode("utf-8", "replace").split("\n")
    except FileNotFoundError:
        return None
    for line in reversed(lines[1:] if len(lines) > 1 else lines):
        line = line.strip()
        if not line:
            continue
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


def tokens_spent(run_dir: Path, summary: Optional[dict]) -> float:
    if summary and summary.get("final_tokens") is not None:
        return float(summary["final_tokens"])
    row = _last_row(run_dir / rundir.METRICS)
    if row and row.get("tokens") is not None:
        return float(row["tokens"])
    return 0.0


def _info_from_summary(summary: dict) -> dict:
    keys = ("params", "tokens", "batch_size", "lr", "seed", "target_loss")
    info = {k: summary.get(k) for k in keys}
    info["group"] = f"N{summary.get('params')}@D{summary.get('tokens')}"
    info["model"] = ""
    info["phase"] = "chase" if summary.get("target_loss") is not None else "reference"
    return info


def _cell(info: dict) -> tuple:
    return (info.get("group"), info.get("phase"), int(info.get("batch_size") or 0),
            float(info.get("lr") or 0.0), int(info.get("seed") or 0))


def is_run_dir(path: Path) -> bool:
    return (Path(path) / rundir.CONFIG).is_file()


def run_dirs(root: Path) -> list:
    """The run directories directly under ``root``, by name."""
    return sorted(p for p in Path(root).iterdir() if p.is_dir() and is_run_dir(p))


def is_sweep_dir(path: Path) -> bool:
    """A sweep directory: it holds sweep.json, an exported steps.csv, or run directories."""
    path = Path(path)
    return (path / MANIFEST).is_file() or (path / STEPS_FILE).is_file() or bool(run_dirs(path))


def _below(path: Path, depth: int) -> list:
    found = []
    for p in sorted(path.iterdir()):
        if not p.is_dir() or p.name.startswith(".") or is_run_dir(p):
            continue
        if is_sweep_dir(p):
            found.append(p)
        elif depth > 1:
            found += _below(p, depth - 1)
    return found


def find_sweeps(path: "str | os.PathLike", depth: int = SEARCH_DEPTH) -> list:
    """Sweep directories at ``path``: itself if it is one (``is_sweep_dir``), else those below it
    up to ``depth`` levels (hidden directories and run directories skipped), by path."""
    path = Path(path)
    if not path.exists():
        raise ScalingError(f"{path}: no such directory")
    if not path.is_dir():
        raise ScalingError(f"{path}: not a directory (expected a sweep or runs directory)")
    return [path] if is_sweep_dir(path) else _below(path, depth)


def _search_pending(root: Path) -> list:
    """An adaptive sweep's runs its lr searches wait for (search.json), as manifest-style cells."""
    try:
        return list(read_json(root / SEARCH).get("pending", []))
    except (FileNotFoundError, ValueError):
        return []


def read_sweep(root: Path, stale_after_s: float = locks.DEFAULT_STALE_AFTER_S) -> SweepRecords:
    """Every run of the sweep at ``root`` with its state; planned runs not on disk are pending."""
    root = Path(root)
    try:
        manifest = read_json(root / MANIFEST) if (root / MANIFEST).is_file() else {}
    except ValueError:
        raise ScalingError(f"{root / MANIFEST}: corrupt manifest") from None
    live = locks.live_claims(root / LOCKS, stale_after_s)
    rec = SweepRecords(root=root, manifest=manifest)
    seen = set()
    groups = {g["key"]: g for g in manifest.get("groups", [])}
    for d in run_dirs(root):
        status = rundir.read_status(d)
        summary = rundir.read_summary(d) if status else None
        try:
            info = read_json(d / RUN_INFO)
        except (FileNotFoundError, ValueError):
            info = _info_from_summary(summary) if summary else None
        if info is None:
            continue  # a run directory we cannot place (no sweep record, not finished)
        state = status if status else ("running" if d.name in live else "pending")
        rec.runs.append(RunRecord(run_id=d.name, run_dir=d, state=state, info=info, summary=summary,
                                  tokens_spent=tokens_spent(d, summary)))
        seen.add(_cell(info))
    for spec in manifest.get("runs", []) + _search_pending(root):
        g = groups.get(spec["group"], {})
        info = {**spec, "model": g.get("model", ""), "params": g.get("params"), "tokens": g.get("tokens"),
                "target_loss": g.get("target") if spec["phase"] == "chase" else None}
        if _cell(info) not in seen:
            rec.runs.append(RunRecord(run_id=None, run_dir=None, state="pending", info=info))
    try:
        from scaling.store import read_jsonl

        rec.events = read_jsonl(root / EVENTS)
    except FileNotFoundError:
        rec.events = []
    return rec
