"""The default tracker: the run directory's ``metrics.jsonl`` (``scaling.rundir.append_metrics``),
append-only, one JSON row per flushed step. It is the run's record, so every run writes it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from scaling import rundir


class JsonlTracker:
    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)

    def log(self, rows: list) -> None:
        if rows:
            rundir.append_metrics(self.run_dir, rows)

    def finish(self, summary: Optional[dict]) -> None:
        pass  # summary.json and status are written by scaling.rundir.finish
