"""The loss grid: final losses of runs at several (batch size, lr) per (params, tokens) group.

docs/design.md, "Loss grid" (how users bring DeepSeek/StepLaw-style sweeps): required columns
``params,tokens,batch_size,lr,loss``; optional ``seq_len, seed, status``. Rows with equal
(params, tokens) form a group. Within a group a (batch size, lr) cell is one training
configuration; replicate seeds of a cell are kept apart (the bootstrap resamples them) and
averaged for the point estimate. Rows whose ``status`` is diverged, failed or censored are not
data points: they are left out, counted, and still count as tried (for the grid-edge flags).
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from scaling.analysis.steps_table import RELATIVE_TOLERANCE, _fmt, _number
from scaling.errors import ScalingError

REQUIRED_COLUMNS = ("params", "tokens", "batch_size", "lr", "loss")
OPTIONAL_COLUMNS = ("seq_len", "seed", "status")
USED_STATUSES = ("", "done", "ok", "finished", "success")
EXCLUDED_STATUSES = ("diverged", "failed", "censored", "running", "pending")
MISSING_LOSS = ("", "nan", "inf", "-inf", "none", "null")


@dataclass(frozen=True)
class LossRun:
    """One run's final loss at one (params, tokens, batch size, lr, seed)."""

    params: float
    tokens: float
    batch_size: float
    lr: float
    loss: float
    seq_len: Optional[float] = None
    seed: Optional[str] = None
    line: int = 0


@dataclass(frozen=True)
class LeftOut:
    """A row that is not a data point (diverged, failed, censored), with where it was."""

    params: float
    tokens: float
    batch_size: float
    lr: float
    status: str
    line: int

    def describe(self) -> str:
        return (f"line {self.line}: params={_fmt(self.params)} tokens={_fmt(self.tokens)} "
                f"batch_size={_fmt(self.batch_size)} lr={_fmt(self.lr)} left out ({self.status})")


@dataclass(frozen=True)
class LossGroup:
    """The cells of one (params, tokens) group.

    ``batch_sizes[i], lrs[i]`` name cell i, ``losses[i]`` the mean over its replicate seeds,
    ``replicates[i]`` the individual seeds' losses. ``tried_batch_sizes`` / ``tried_lrs`` also
    hold the values of left-out (diverged, failed) runs: they were tried.
    """

    params: float
    tokens: float
    seq_len: Optional[float]
    batch_sizes: np.ndarray
    lrs: np.ndarray
    losses: np.ndarray
    replicates: tuple
    tried_batch_sizes: tuple
    tried_lrs: tuple
    left_out: int = 0

    @property
    def key(self) -> tuple:
        return (self.params, self.tokens)

    @property
    def name(self) -> str:
        return f"params={_fmt(self.params)} tokens={_fmt(self.tokens)}"

    @property
    def n_runs(self) -> int:
        return sum(len(r) for r in self.replicates)


@dataclass(frozen=True)
class LossGrid:
    """The groups of a loss grid, the rows left out, and the sha256 of the input."""

    groups: tuple
    left_out: tuple = ()
    sha256: str = ""
    source: str = ""
    warnings: tuple = field(default_factory=tuple)


def _read_records(path: Path) -> tuple:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ScalingError(f"loss grid not found: {path}") from None
    except IsADirectoryError:
        raise ScalingError(f"{path} is a directory; export a loss grid with "
                           f"`scaling steps {path} --losses -o losses.csv`") from None
    except OSError as e:
        raise ScalingError(f"cannot read loss grid {path}: {e.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ScalingError(f"loss grid {path} is not UTF-8 text") from None
    try:
        rows = list(csv.reader(text.splitlines(), strict=True))
    except csv.Error as e:
        raise ScalingError(f"malformed CSV {path}: {e}") from None
    if not rows or not any(h.strip() for h in rows[0]):
        raise ScalingError(f"loss grid {path} is empty (no header)")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ScalingError(f"loss grid {path} lacks required column(s) {', '.join(missing)} "
                           f"(header: {','.join(header)})")
    if len(set(header)) != len(header):
        raise ScalingError(f"loss grid {path} has a repeated column name")
    records = []
    for i, fields in enumerate(rows[1:]):
        if not "".join(fields).strip():
            continue
        if len(fields) != len(header):
            raise ScalingError(f"malformed CSV {path}: line {i + 2} has {len(fields)} fields, "
                               f"header has {len(header)}")
        records.append((i + 2, dict(zip(header, fields))))
    return records, hashlib.sha256(data).hexdigest()


def parse_record(rec: dict, line: int):
    """One CSV record -> a LossRun, or a LeftOut for a diverged/failed/censored row."""
    rec = {k: ("" if v is None else str(v)) for k, v in rec.items()}
    status = rec.get("status", "").strip().lower()
    if status not in USED_STATUSES + EXCLUDED_STATUSES:
        raise ScalingError(f"line {line}: unknown status {status!r} (expected one of "
                           f"{', '.join(s for s in USED_STATUSES + EXCLUDED_STATUSES if s)})")
    params = _number(rec.get("params"), "params", line, positive=True, allow_empty=False)
    tokens = _number(rec.get("tokens"), "tokens", line, positive=True, allow_empty=False)
    batch = _number(rec.get("batch_size"), "batch_size", line, positive=True, allow_empty=False)
    lr = _number(rec.get("lr"), "lr", line, positive=True, allow_empty=False)
    if status in EXCLUDED_STATUSES:
        return LeftOut(params, tokens, batch, lr, status, line)
    loss_text = rec.get("loss", "").strip().lower()
    if loss_text in MISSING_LOSS:
        raise ScalingError(f"line {line}: loss is {loss_text or 'empty'} but status is not 'diverged' "
                           f"or 'failed'")
    return LossRun(params=params, tokens=tokens, batch_size=batch, lr=lr,
                   loss=_number(rec.get("loss"), "loss", line, positive=True, allow_empty=False),
                   seq_len=_number(rec.get("seq_len", ""), "seq_len", line, positive=True, allow_empty=True),
                   seed=rec.get("seed", "").strip() or None, line=line)


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= RELATIVE_TOLERANCE * max(abs(a), abs(b))


def group_runs(runs, left_out=()) -> list:
    """LossGroups by (params, tokens): cells (batch size, lr), seeds kept as replicates."""
    cells: dict = {}
    for r in runs:
        group = cells.setdefault((r.params, r.tokens), {})
        seeds = group.setdefault((r.batch_size, r.lr), {})
        prev = seeds.get(r.seed)
        if prev is not None:
            if not _same(prev.loss, r.loss):
                raise ScalingError(f"lines {prev.line} and {r.line}: duplicate runs (params={_fmt(r.params)} "
                                   f"tokens={_fmt(r.tokens)} batch_size={_fmt(r.batch_size)} lr={_fmt(r.lr)} "
                                   f"seed={r.seed}) with different losses")
            continue
        seeds[r.seed] = r
    tried: dict = {}
    for e in left_out:
        tried.setdefault((e.params, e.tokens), set()).add((e.batch_size, e.lr))
    groups = []
    for key in sorted(cells):
        members = cells[key]
        seq = {r.seq_len for seeds in members.values() for r in seeds.values() if r.seq_len is not None}
        if len(seq) > 1:
            raise ScalingError(f"group params={_fmt(key[0])} tokens={_fmt(key[1])} has several seq_len "
                               f"values ({', '.join(sorted(_fmt(s) for s in seq))}); split the table")
        order = sorted(members)
        reps = tuple(tuple(r.loss for r in members[c].values()) for c in order)
        extra = tried.get(key, set())
        groups.append(LossGroup(
            params=key[0], tokens=key[1], seq_len=seq.pop() if seq else None,
            batch_sizes=np.array([c[0] for c in order], float), lrs=np.array([c[1] for c in order], float),
            losses=np.array([np.mean(r) for r in reps], float), replicates=reps,
            tried_batch_sizes=tuple(sorted({c[0] for c in order} | {c[0] for c in extra})),
            tried_lrs=tuple(sorted({c[1] for c in order} | {c[1] for c in extra})),
            left_out=sum(1 for e in left_out if (e.params, e.tokens) == key)))
    return groups


def load_losses(source: "str | os.PathLike") -> LossGrid:
    """Read a loss grid CSV (ScalingError, one line, for any bad input)."""
    path = Path(source)
    records, digest = _read_records(path)
    runs, left_out = [], []
    for line, rec in records:
        item = parse_record(rec, line)
        (left_out if isinstance(item, LeftOut) else runs).append(item)
    if not runs:
        raise ScalingError(f"loss grid {path} has no usable rows"
                           + (f" ({len(left_out)} diverged/failed/censored)" if left_out else ""))
    warnings = []
    if left_out:
        counts: dict = {}
        for e in left_out:
            counts[e.status] = counts.get(e.status, 0) + 1
        warnings.append("left-out rows: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return LossGrid(groups=tuple(group_runs(runs, left_out)), left_out=tuple(left_out), sha256=digest,
                    source=str(path), warnings=tuple(warnings))


def grid_from_runs(runs, source: str = "synthetic") -> LossGrid:
    """A LossGrid from LossRun records (synthetic grids, tests)."""
    return LossGrid(groups=tuple(group_runs(runs)), sha256=source, source=source)
