"""The run directory: the record every workload writes and every reader trusts.

Layout (docs/design.md, "Run directory"), under ``runs/<sweep>/<run-id>/``:

- ``config.json``   full resolved config, workload name, package version, run id
- ``metrics.jsonl`` one row per log/eval step (step, tokens, train_loss, eval_loss, ...)
- ``summary.json``  ``scaling.summary.RunSummary``: status, reason code, target, steps to target, ...
- ``status``        one word (see STATUSES), written last and atomically

A run is finished exactly when ``status`` exists. Writers use ``scaling.store`` (atomic
rename), so a reader never sees a half-written record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from scaling import __version__
from scaling.errors import ScalingError
from scaling.summary import RunSummary
from scaling.store import append_jsonl, atomic_write_json, atomic_write_text, read_json, read_jsonl

CONFIG = "config.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
STATUS = "status"

# done: finished its budget (or stopped at the target); censored: hit the token cap before the
# target; diverged: NaN/inf loss; failed: crashed (OOM, error) -- reason in summary.json.
STATUSES = ("done", "censored", "diverged", "failed")
RETRIED = ("failed",)  # finished statuses that running the same run again retries (diverged is deterministic)


def write_config(run_dir: Path, resolved: dict, *, workload: str, run_id: str) -> None:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / CONFIG, {"run_id": run_id, "workload": workload,
                                         "version": __version__, "config": resolved})


def append_metrics(run_dir: Path, rows: list[dict]) -> None:
    append_jsonl(Path(run_dir) / METRICS, rows)


def finish(run_dir: Path, summary: RunSummary) -> dict:
    """Write summary.json (``summary.to_dict()``), then the status marker (last, atomically);
    returns the dict written. The one writer of run summaries."""
    if summary.status not in STATUSES:
        raise ValueError(f"unknown run status {summary.status!r}")
    run_dir = Path(run_dir)
    data = summary.to_dict()
    atomic_write_json(run_dir / SUMMARY, data)
    atomic_write_text(run_dir / STATUS, summary.status + "\n")
    return data


def read_status(run_dir: Path) -> Optional[str]:
    """The finished status, or None while the run is not finished."""
    try:
        return (Path(run_dir) / STATUS).read_text().strip() or None
    except FileNotFoundError:
        return None


def read_summary(run_dir: Path) -> Optional[dict]:
    if read_status(run_dir) is None:
        return None
    return read_json(Path(run_dir) / SUMMARY)


def read_run_summary(run_dir: Path) -> Optional[RunSummary]:
    """The finished run's summary as a typed record, or None while it is not finished."""
    data = read_summary(run_dir)
    return None if data is None else RunSummary.from_dict(data)


def read_config(run_dir: Path) -> Optional[dict]:
    try:
        return read_json(Path(run_dir) / CONFIG)
    except FileNotFoundError:
        return None


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / METRICS
    return read_jsonl(path) if path.exists() else []


def recorded_run_id(run_dir: Path) -> Optional[str]:
    """The run id the directory's records name (summary.json, else config.json), or None."""
    for name in (SUMMARY, CONFIG):
        try:
            rid = read_json(Path(run_dir) / name).get("run_id")
        except (FileNotFoundError, NotADirectoryError, ValueError, AttributeError):
            continue
        if rid:
            return str(rid)
    return None


def check_same_run(run_dir: Path, run_id: str) -> None:
    """``ScalingError`` when ``run_dir`` holds the records of a run other than ``run_id``
    (finished or not): a directory holds one run, whose id its name or config.json gives."""
    other = recorded_run_id(run_dir)
    if other is not None and other != run_id:
        state = read_status(run_dir)
        raise ScalingError(f"{run_dir}: holds {'a ' + state if state else 'an unfinished'} run of another config "
                           f"(run id {other}; this config's is {run_id}); give another --out")


def clear_status(run_dir: Path) -> None:
    """Forget a finished status (used when a run is deliberately re-run)."""
    for name in (STATUS, SUMMARY):
        try:
            (Path(run_dir) / name).unlink()
        except FileNotFoundError:
            pass
