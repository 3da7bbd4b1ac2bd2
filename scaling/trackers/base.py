"""The tracker interface: ``log(rows)`` as a run's metrics rows are flushed, ``finish(summary)``
once (summary None when the run was interrupted and will resume).

A row is one ``metrics.jsonl`` row: ``step``, ``tokens`` and the metrics of that step
(docs/design.md, "Run directory"). ``RunContext`` is what a backend names the run by: the run
id, and inside a sweep the sweep's name, the run's (N, D) group and phase, read from the
``sweep_run.json`` the sweep writes into the run directory before the run starts.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Protocol

from scaling.store import read_json

SWEEP_RUN = "sweep_run.json"  # written by the sweep (scaling.sweep.protocol.RUN_INFO, a higher layer)
PROJECT = "scaling"  # the project of a run outside a sweep


class Tracker(Protocol):
    def log(self, rows: list) -> None:
        """Metrics rows (dicts with ``step``), in step order."""

    def finish(self, summary: Optional[dict]) -> None:
        """The run stopped (its summary), or was interrupted (None)."""


@dataclass(frozen=True)
class RunContext:
    run_dir: Path
    run_id: str
    project: str = PROJECT
    group: Optional[str] = None  # the sweep's (N, D) group
    job_type: Optional[str] = None  # the sweep phase (reference, chase)
    tags: tuple = ()
    config: dict = field(default_factory=dict)


def run_context(run_dir: Path, *, run_id: str, config: Optional[Mapping] = None) -> RunContext:
    """Project and group from the sweep when the run belongs to one; the run id names it."""
    run_dir = Path(run_dir)
    try:
        info = read_json(run_dir / SWEEP_RUN)
    except (FileNotFoundError, ValueError):
        info = None
    config = dict(config or {})
    if not isinstance(info, dict):
        return RunContext(run_dir, run_id, config=config)
    tags = tuple(f"{k}={info[k]}" for k in ("batch_size", "lr", "seed") if info.get(k) is not None)
    return RunContext(run_dir, run_id, project=str(info.get("sweep") or PROJECT), group=info.get("group"),
                      job_type=info.get("phase"), tags=tags, config={**config, "sweep": info})


def scalars(row: Mapping) -> dict:
    """The finite numbers of a row, without ``step`` (what a tracker plots)."""
    out = {}
    for k, v in row.items():
        if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool) and v == v:
            out[k] = float(v)
    return out


class Composite:
    """The record and a backend as one tracker. The record is written first; a backend that
    fails is reported once on stderr and dropped, so a tracker never stops a run or loses its
    record."""

    def __init__(self, trackers: list):
        self.record, *self.backends = trackers

    def log(self, rows: list) -> None:
        self.record.log(rows)
        self._each("log", rows)

    def finish(self, summary: Optional[dict]) -> None:
        self.record.finish(summary)
        self._each("finish", summary)

    def _each(self, method: str, arg) -> None:
        for t in list(self.backends):
            try:
                getattr(t, method)(arg)
            except Exception as e:  # noqa: BLE001 - a tracker is never worth a run
                self.backends.remove(t)
                print(f"scaling: tracker {type(t).__name__} failed and is off for this run "
                      f"({type(e).__name__}: {e}); metrics.jsonl is complete", file=sys.stderr)
