"""A sweep's run directories exported as a steps table (``scaling steps RUNS -o steps.csv``).

One row per run, in the columns of ``scaling.analysis.steps_table.COLUMNS`` (docs/design.md,
"Steps table"): ``params,tokens,batch_size,steps`` and
``seq_len, lr, seed, target_loss, status``, then the sweep's bookkeeping: ``best_lr`` (the lr
with the fewest steps at that (params, tokens, batch size): S(B) is the minimum over the
tuning grid, Zhang et al. 2024), ``lr_edge`` (``low``/``high`` when that lr is the grid's
smallest/largest: the optimum may lie outside, widen the grid), ``model``, ``phase``,
``run_id``, ``reason``; last the optional gradient-noise-scale columns ``b_simple`` (the run's
B_simple at its target crossing) and ``b_simple_mean`` (its average over training), in
sequences, from summary.json (``scaling.noise_scale.summarize``), empty when the run did not measure it.

``steps`` is the interpolated crossing of L* (``scaling.target.crossing_step``). Reference
runs (B_ref, trained for D tokens with no target) get theirs from their own eval curve; a
reference lr whose curve never reaches L* is ``censored`` for S(B_ref), like a chase run that
hit its token cap. Diverged and failed runs keep their status: the analysis leaves them out
and reports them, and never confuses them with censoring.

This is also where "a steps table" given as a directory is resolved (``load_table``,
``load_records``: a CSV file, or a sweep or runs directory exported on the fly), so that
``scaling cbs RUNS`` and the figures read runs while the analysis only ever sees rows.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Mapping, Optional

from scaling import rundir
from scaling.analysis.steps_table import (COLUMNS, MIN_BATCH_SIZES, StepsTable, load_steps, read_csv_records,
                                          records_sha256, select_records, table_from_records)
from scaling.noise_scale import summarize
from scaling.store import atomic_write_text
from scaling.sweep.records import find_sweeps, read_sweep
from scaling.target import crossing_step

DEFAULT_METRIC = "eval_loss"


def reference_steps(run_dir: Path, summary: dict, target: float):
    """S at which a reference run's own eval curve first reaches ``target`` (interpolated)."""
    metric = summary.get("eval_metric") or DEFAULT_METRIC
    steps, losses = [], []
    for row in rundir.read_metrics(run_dir):
        if row.get(metric) is not None and row.get("step") is not None:
            steps.append(float(row["step"]))
            losses.append(float(row[metric]))
    return crossing_step(steps, losses, target) if steps else None


def reference_b_simple(run_dir: Path, step: float):
    """A reference run's logged B_simple interpolated at its own crossing ``step`` (its summary has
    no target, so no ``b_simple_at_target``); None when the run did not measure it."""
    logged = [(r["step"], r["gns_b_simple"]) for r in rundir.read_metrics(run_dir)
              if "gns_b_simple" in r and r.get("step") is not None]
    if not logged:
        return None
    return summarize([a for a, _ in logged], [b for _, b in logged], step)["b_simple_at_target"]


def _row(rec, group_targets: dict) -> dict:
    info, s = rec.info, rec.summary or {}
    target = info.get("target_loss")
    if target is None:
        target = group_targets.get(info.get("group"))
    row = {"params": s.get("params", info.get("params")), "tokens": s.get("tokens", info.get("tokens")),
           "batch_size": s.get("batch_size", info.get("batch_size")), "steps": None,
           "seq_len": s.get("seq_len"), "lr": s.get("lr", info.get("lr")), "seed": s.get("seed", info.get("seed")),
           "target_loss": target, "status": rec.state, "model": info.get("model", ""),
           "phase": info.get("phase", ""), "run_id": rec.run_id or "", "reason": s.get("reason", ""),
           "b_simple": s.get("b_simple_at_target"), "b_simple_mean": s.get("b_simple_mean"),
           "_group": info.get("group")}
    if rec.state in ("done", "censored") and info.get("phase") == "reference" and target is not None:
        steps = reference_steps(rec.run_dir, s, float(target))
        row["steps"] = steps
        row["status"] = "done" if steps is not None else "censored"
        if steps is None:
            row["reason"] = f"final loss above the target {target:.6g} at B_ref"
        elif row["b_simple"] is None and s.get("b_simple_mean") is not None:
            row["b_simple"] = reference_b_simple(rec.run_dir, steps)
    elif rec.state == "done":
        row["steps"] = s.get("steps_to_target")
        if row["steps"] is None:
            row["status"], row["reason"] = "censored", "no target crossing recorded"
    return row


def _mark_best(rows: list) -> None:
    """best_lr and lr_edge per (group, batch size, seed): each seed's fastest lr, as S(B) tunes
    each seed's lr before the seeds are averaged (``scaling.analysis.steps_table.group_rows``)."""
    cells: dict = {}
    for r in rows:
        cells.setdefault((r["_group"], r["params"], r["tokens"], r["batch_size"], str(r["seed"])), []).append(r)
    for members in cells.values():
        tried = sorted({float(r["lr"]) for r in members if r["lr"] is not None})
        by_lr: dict = {}
        for r in members:
            if r["steps"] is not None and r["status"] == "done":
                by_lr.setdefault(float(r["lr"]), []).append(math.log(float(r["steps"])))
        best, edge = None, ""
        if by_lr:
            best = min(by_lr, key=lambda lr: sum(by_lr[lr]) / len(by_lr[lr]))
            if len(tried) >= 2 and best == tried[0]:
                edge = "low"
            elif len(tried) >= 2 and best == tried[-1]:
                edge = "high"
        for r in members:
            r["best_lr"], r["lr_edge"] = best, edge


def steps_rows(runs_dir: "str | os.PathLike") -> list:
    """The steps table of every sweep under ``runs_dir`` (a sweep directory or a runs root)."""
    rows = []
    for root in find_sweeps(runs_dir):
        rec = read_sweep(root)
        targets = {g["key"]: g.get("target") for g in rec.groups()}
        part = [_row(r, targets) for r in rec.runs]
        _mark_best(part)
        rows += part
    rows.sort(key=lambda r: (float(r["params"] or 0), float(r["tokens"] or 0), int(r["batch_size"] or 0),
                             float(r["lr"] or 0), str(r["seed"]), r["run_id"]))
    return [{c: r.get(c) for c in COLUMNS} for r in rows]


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    return " ".join(str(v).split())


def table_csv(rows: list, columns) -> str:
    """Rows as CSV text with ``columns`` in order (None empty, whole floats without a point)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in columns])
    return buf.getvalue()


def steps_csv(rows: list) -> str:
    return table_csv(rows, COLUMNS)


def write_steps_csv(rows: list, path: "str | os.PathLike") -> None:
    """Write the table atomically (a reader never sees half of it)."""
    atomic_write_text(Path(path), steps_csv(rows))


def steps_table(runs_dir: "str | os.PathLike", min_batch_sizes: int = MIN_BATCH_SIZES,
                where: Optional[Mapping] = None) -> StepsTable:
    """The analysis table of the runs under ``runs_dir`` (``steps_rows``, named by
    ``records_sha256``): what ``scaling cbs RUNS`` fits, without writing a CSV. ``where``'s row
    keys (``model=NAME``) keep only the matching runs (``select_records``)."""
    rows = steps_rows(runs_dir)
    return table_from_records(select_records(rows, where), str(runs_dir), records_sha256(rows), min_batch_sizes)


def load_table(source: "str | os.PathLike", min_batch_sizes: int = MIN_BATCH_SIZES,
               where: Optional[Mapping] = None) -> StepsTable:
    """A steps table from a CSV file (``load_steps``) or a sweep or runs directory (``steps_table``)."""
    if Path(source).is_dir():
        return steps_table(source, min_batch_sizes, where)
    return load_steps(source, min_batch_sizes, where)


def table_sha256(source: "str | os.PathLike") -> str:
    """The input hash ``load_table`` would give the table (what fit files name), without building
    its groups: a sweep whose shapes hold several configurations has a hash but no one table."""
    if Path(source).is_dir():
        return records_sha256(steps_rows(source))
    return read_csv_records(Path(source))[1]


def load_records(source: "str | os.PathLike") -> list:
    """The rows (dicts, every column kept) of a steps CSV or of a sweep or runs directory."""
    if Path(source).is_dir():
        return steps_rows(source)
    records, _ = read_csv_records(Path(source))
    return [r for r in records if r is not None]
