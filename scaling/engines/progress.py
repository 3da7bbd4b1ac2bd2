"""The driver's report of a sweep that runs elsewhere, read from the sweep's own record.

Workers append a ``start`` and a ``finish`` event per run to ``events.jsonl`` (docs/design.md,
"Sweep directory"); the driver of a Ray or SLURM sweep follows that file instead of asking the
workers, so what it reports is what the record says, whichever engine ran the runs.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Callable, Optional

from scaling import rundir
from scaling.store import read_jsonl
from scaling.sweep.protocol import EVENTS

REPORT_EVERY_S = 10.0  # seconds between the driver's counts lines


class EventFollower:
    """New ``events.jsonl`` rows since the last look, from ``since`` (the driver's start) on."""

    def __init__(self, root: Path, since: float):
        self.path, self.since, self.seen = Path(root) / EVENTS, since, 0

    def new(self) -> list:
        try:
            rows = read_jsonl(self.path)
        except FileNotFoundError:
            return []
        fresh, self.seen = rows[self.seen:], len(rows)
        return [e for e in fresh if float(e.get("time", 0.0)) >= self.since]


class Report:
    """Counts of the runs finished in this invocation; failures named with their reason."""

    def __init__(self, root: Path, since: float, engine: str, print_fn: Optional[Callable] = print,
                 every_s: float = REPORT_EVERY_S):
        self.root, self.engine, self.print_fn, self.every_s = Path(root), engine, print_fn, every_s
        self.follower = EventFollower(root, since)
        self.finished: Counter = Counter()
        self.started = 0
        self.last_line = (0, 0.0)  # (runs finished, time) at the last counts line

    def poll(self, final: bool = False) -> None:
        """Read new events: name failures at once, counts every ``every_s`` seconds (and when ``final``)."""
        events = self.follower.new()
        finished = [e for e in events if e.get("event") == "finish"]
        self.started += sum(e.get("event") == "start" for e in events)
        for e in finished:
            self.finished[e.get("status") or "?"] += 1
            if e.get("status") == "failed":
                summary = rundir.read_summary(self.root / e["run_id"]) or {}
                self.say(f"run {e['run_id']} failed: {summary.get('reason', '')}")
        n, now = sum(self.finished.values()), time.time()
        if n != self.last_line[0] and (final or now - self.last_line[1] >= self.every_s):
            self.last_line = (n, now)
            self.say(self.line())

    def line(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.finished.items()))
        return f"{sum(self.finished.values())} runs finished ({counts or 'none yet'})"

    def say(self, text: str) -> None:
        if self.print_fn is not None:
            self.print_fn(f"[{self.engine}] {text}")
