"""The steps table: its columns, and S(B) per (params, tokens) group from its rows.

docs/design.md, "Steps table": required columns ``params,tokens,batch_size,steps``; optional
``seq_len, lr, seed, target_loss, status``; then the bookkeeping a sweep export adds and the
optional gradient-noise-scale columns (declared here once; ``scaling.sweep.export`` writes
them, the analysis reads the first two groups). Rows with equal (params, tokens) form a group;
within a group the minimum steps over the tuning grid (``lr``) is used per batch size
(Zhang et al. 2024, S(B) is "minimum over the tuning grid at that B"). With replicate seeds,
each seed's minimum over the tuning grid is taken first and the seeds' minima are combined by
their geometric mean (the fits work in log S); a batch size where a seed never reached the
target is not a data point (keeping the other seeds would keep only the lucky ones). Censored,
diverged and failed rows are not data points: they are excluded and reported.

The input is a CSV (``load_steps``) or rows already in memory (``table_from_records``, e.g. a
sweep's run directories read by ``scaling.sweep.export``); this module reads no run directory.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

from scaling.errors import ScalingError

REQUIRED_COLUMNS = ("params", "tokens", "batch_size", "steps")
OPTIONAL_COLUMNS = ("seq_len", "lr", "seed", "target_loss", "status")
# A sweep export's bookkeeping: best_lr (fewest steps at that (params, tokens, batch size, seed)),
# lr_edge (low/high: that lr is the grid's smallest/largest), the run's model, phase, id, reason.
BOOKKEEPING_COLUMNS = ("best_lr", "lr_edge", "model", "phase", "run_id", "reason")
B_SIMPLE_COLUMN = "b_simple"            # B_simple at the run's target crossing (sequences)
B_SIMPLE_MEAN_COLUMN = "b_simple_mean"  # B_simple averaged over the run
NOISE_SCALE_COLUMNS = (B_SIMPLE_COLUMN, B_SIMPLE_MEAN_COLUMN)
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS + BOOKKEEPING_COLUMNS + NOISE_SCALE_COLUMNS  # in this order
USED_STATUSES = ("", "done", "ok", "finished", "success", "reached")
EXCLUDED_STATUSES = ("censored", "diverged", "failed", "running", "pending")
MIN_BATCH_SIZES = 3  # a two-parameter step model needs at least one residual degree of freedom
RELATIVE_TOLERANCE = 1e-9  # two numbers this close are "equal" (duplicate detection, grouping)


@dataclass(frozen=True)
class Row:
    """One measured run: S(B) at one (params, tokens, batch size, lr, seed)."""

    params: float
    tokens: float
    batch_size: float
    steps: float
    seq_len: Optional[float] = None
    lr: Optional[float] = None
    seed: Optional[str] = None
    target_loss: Optional[float] = None
    status: str = ""
    line: int = 0


@dataclass(frozen=True)
class Excluded:
    """A row that is not a data point (censored, diverged, failed), with the reason."""

    params: float
    tokens: float
    batch_size: float
    status: str
    line: int
    lr: Optional[float] = None  # the tuning-grid value this run tried, if the table has it
    seed: Optional[str] = None  # the replicate it belongs to, if the table has seeds

    def describe(self) -> str:
        return (f"line {self.line}: params={_fmt(self.params)} tokens={_fmt(self.tokens)} "
                f"batch_size={_fmt(self.batch_size)} excluded ({self.status})")


@dataclass(frozen=True)
class Group:
    """S(B) of one (params, tokens) pair after the minimum over the tuning grid.

    ``batch_sizes`` ascending, ``steps`` the chosen value per batch size. ``replicates[i]`` holds
    the individual seeds' steps at ``batch_sizes[i]``, each at that seed's best lr (length 1 when
    there is a single run); ``best_lr[i]`` the chosen lr, with seeds the one most of them won with
    (None when the table has no lr column).
    """

    params: float
    tokens: float
    batch_sizes: np.ndarray
    steps: np.ndarray
    replicates: tuple
    best_lr: tuple
    seq_len: Optional[float] = None
    target_loss: Optional[float] = None
    warnings: tuple = ()

    @property
    def key(self) -> tuple:
        return (self.params, self.tokens)

    @property
    def has_seeds(self) -> bool:
        """Every batch size has at least two replicate runs: bootstrap can resample them."""
        return all(len(r) >= 2 for r in self.replicates)


@dataclass(frozen=True)
class StepsTable:
    """The groups of a steps table, the rows left out, and the hash of the input."""

    groups: tuple
    excluded: tuple = ()
    sha256: str = ""
    source: str = ""
    warnings: tuple = field(default_factory=tuple)


def _fmt(x) -> str:
    return f"{x:.6g}" if isinstance(x, float) else str(x)


def _number(text: str, column: str, line: int, *, positive: bool, allow_empty: bool) -> Optional[float]:
    text = (text or "").strip()
    if text == "":
        if allow_empty:
            return None
        raise ScalingError(f"line {line}: column {column!r} is empty")
    try:
        value = float(text)
    except ValueError:
        raise ScalingError(f"line {line}: column {column!r} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise ScalingError(f"line {line}: column {column!r} is not finite: {text!r}")
    if positive and value <= 0:
        raise ScalingError(f"line {line}: column {column!r} must be positive, got {text!r}")
    return value


def parse_rows(records: Iterable[Mapping[str, object]], first_line: int = 2) -> tuple[list, list]:
    """Validate dict records (CSV rows or ``scaling.sweep.export.steps_rows``) into used rows and exclusions."""
    rows, excluded = [], []
    for i, rec in enumerate(records):
        line = first_line + i
        rec = {str(k).strip(): ("" if v is None else str(v)) for k, v in rec.items() if k is not None}
        status = rec.get("status", "").strip().lower()
        if status not in USED_STATUSES and status not in EXCLUDED_STATUSES:
            raise ScalingError(f"line {line}: unknown status {status!r} (expected one of "
                               f"{', '.join(s for s in USED_STATUSES + EXCLUDED_STATUSES if s)})")
        params = _number(rec.get("params"), "params", line, positive=True, allow_empty=False)
        tokens = _number(rec.get("tokens"), "tokens", line, positive=True, allow_empty=False)
        batch = _number(rec.get("batch_size"), "batch_size", line, positive=True, allow_empty=False)
        if status in EXCLUDED_STATUSES:
            lr_text = rec.get("lr", "").strip()
            lr = _number(lr_text, "lr", line, positive=True, allow_empty=True) if lr_text else None
            excluded.append(Excluded(params, tokens, batch, status, line, lr, rec.get("seed", "").strip() or None))
            continue
        steps_text = rec.get("steps", "").strip().lower()
        if steps_text in ("", "nan", "inf", "none", "null"):
            raise ScalingError(f"line {line}: steps is {steps_text or 'empty'!s} but status is not "
                               f"'censored' or 'diverged'")
        steps = _number(rec.get("steps"), "steps", line, positive=True, allow_empty=False)
        rows.append(Row(
            params=params, tokens=tokens, batch_size=batch, steps=steps,
            seq_len=_number(rec.get("seq_len", ""), "seq_len", line, positive=True, allow_empty=True),
            lr=_number(rec.get("lr", ""), "lr", line, positive=True, allow_empty=True),
            seed=(rec.get("seed", "").strip() or None),
            target_loss=_number(rec.get("target_loss", ""), "target_loss", line, positive=False,
                                allow_empty=True),
            status=status, line=line))
    return rows, excluded


def _close(a: Optional[float], b: Optional[float]) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE)


def _single(values: list, what: str, key: tuple) -> Optional[float]:
    present = [v for v in values if v is not None]
    if not present:
        return None
    if any(not _close(v, present[0]) for v in present):
        raise ScalingError(f"group params={_fmt(key[0])} tokens={_fmt(key[1])} has several {what} "
                           f"values ({', '.join(sorted({_fmt(v) for v in present}))}); split the table")
    return present[0]


def _edge_warning(key: tuple, b: float, lr_best, tried) -> Optional[str]:
    tried = sorted(set(tried))
    if lr_best is None or len(tried) < 2 or lr_best not in (tried[0], tried[-1]):
        return None
    edge = "smallest" if lr_best == tried[0] else "largest"
    return (f"params={_fmt(key[0])} tokens={_fmt(key[1])} batch_size={_fmt(b)}: best lr {lr_best:g} is the "
            f"{edge} tried; the tuning grid may not contain the optimum")


def _one_replicate(key, by_batch, tried_elsewhere):
    """S(B) of a group with one seed (or none): the minimum over lr (mean over a cell's repeats)."""
    steps, reps, best, warnings = [], [], [], []
    for b in sorted(by_batch):
        cells = {lr: [v for vs in per_seed.values() for v in vs] for lr, per_seed in by_batch[b].items()}
        options = {lr: float(np.exp(np.mean(np.log(v)))) for lr, v in cells.items()}
        lr_best = min(options, key=options.get)
        steps.append(options[lr_best])
        reps.append(tuple(cells[lr_best]))
        best.append(lr_best)
        tried = [lr for lr in options if lr is not None] + \
            [lr for (lr, _) in tried_elsewhere.get((*key, b), ()) if lr is not None]
        warnings.append(_edge_warning(key, b, lr_best, tried))
    return sorted(by_batch), steps, reps, best, [w for w in warnings if w]


def _replicated(key, by_batch, tried_elsewhere, seeds):
    """S(B) of a group with several seeds: each seed's minimum over lr, then their geometric mean.

    A batch size where a seed was tried but never reached the target is not a data point: its
    S(B) lies above what that seed measured, and a mean over the other seeds would keep only the
    lucky ones. The best lr reported is the one most seeds won with (ties: the faster)."""
    kept, steps, reps, best, warnings = [], [], [], [], []
    for b in sorted(by_batch):
        per_seed = {}
        for lr, runs in by_batch[b].items():
            for seed, vs in runs.items():
                v = float(np.exp(np.mean(np.log(vs))))
                if seed not in per_seed or v < per_seed[seed][0]:
                    per_seed[seed] = (v, lr)
        failed = sorted(str(sd) for (_, sd) in tried_elsewhere.get((*key, b), ()) if sd in seeds and sd not in per_seed)
        if failed:
            warnings.append(f"params={_fmt(key[0])} tokens={_fmt(key[1])} batch_size={_fmt(b)}: seed(s) "
                            f"{', '.join(sorted(set(failed)))} did not reach the target there (censored or "
                            f"unfinished); not a data point")
            continue
        values = [v for v, _ in per_seed.values()]
        wins: dict = {}
        for v, lr in per_seed.values():
            wins.setdefault(lr, []).append(v)
        lr_best = min(wins, key=lambda lr: (-len(wins[lr]), min(wins[lr])))
        kept.append(b)
        steps.append(float(np.exp(np.mean(np.log(values)))))
        reps.append(tuple(values))
        best.append(lr_best)
        for seed, (_, lr) in sorted(per_seed.items(), key=lambda kv: str(kv[0])):
            tried = [x for x, runs in by_batch[b].items() if seed in runs and x is not None] + \
                [x for (x, sd) in tried_elsewhere.get((*key, b), ()) if sd == seed and x is not None]
            w = _edge_warning(key, b, lr, tried)
            if w:
                warnings.append(f"{w} (seed {seed})")
    return kept, steps, reps, best, warnings


def group_rows(rows: Sequence[Row], min_batch_sizes: int = MIN_BATCH_SIZES,
               excluded: Sequence[Excluded] = ()) -> tuple[list, list]:
    """Groups by (params, tokens), S(B) per batch size: with one seed the minimum over lr; with
    several, each seed's minimum over lr, then the geometric mean over seeds (``_replicated``).

    The grid-edge warning (best lr the smallest or largest tried) counts the lrs of ``excluded``
    rows at the same batch size as tried: an lr that never reached the target was still tried."""
    tried_elsewhere: dict = {}
    for e in excluded:
        tried_elsewhere.setdefault((e.params, e.tokens, e.batch_size), set()).add((e.lr, e.seed))
    cells: dict = {}
    for r in rows:
        key = (r.params, r.tokens)
        cell = (r.batch_size, r.lr, r.seed)
        prev = cells.setdefault(key, {}).get(cell)
        if prev is not None:
            if not _close(prev.steps, r.steps) or not _close(prev.seq_len, r.seq_len) \
                    or not _close(prev.target_loss, r.target_loss):
                raise ScalingError(
                    f"lines {prev.line} and {r.line}: duplicate rows (params={_fmt(r.params)} "
                    f"tokens={_fmt(r.tokens)} batch_size={_fmt(r.batch_size)} lr={r.lr} seed={r.seed}) "
                    f"with conflicting values")
            continue
        cells[key][cell] = r
    groups, warnings = [], []
    for key in sorted(cells):
        runs = list(cells[key].values())
        seq_len = _single([r.seq_len for r in runs], "seq_len", key)
        target = _single([r.target_loss for r in runs], "target_loss", key)
        by_batch: dict = {}
        for r in runs:
            by_batch.setdefault(r.batch_size, {}).setdefault(r.lr, {}).setdefault(r.seed, []).append(r.steps)
        seeds = {r.seed for r in runs}
        if len(seeds) > 1:
            batch_sizes, steps, reps, best, group_warnings = _replicated(key, by_batch, tried_elsewhere, seeds)
        else:
            batch_sizes, steps, reps, best, group_warnings = _one_replicate(key, by_batch, tried_elsewhere)
        if len(batch_sizes) < min_batch_sizes:
            raise ScalingError(f"group params={_fmt(key[0])} tokens={_fmt(key[1])} has "
                               f"{len(batch_sizes)} usable batch size(s); at least {min_batch_sizes} "
                               f"are needed to fit S(B)")
        groups.append(Group(params=key[0], tokens=key[1], batch_sizes=np.array(batch_sizes, float),
                            steps=np.array(steps, float), replicates=tuple(reps), best_lr=tuple(best),
                            seq_len=seq_len, target_loss=target, warnings=tuple(group_warnings)))
        warnings.extend(group_warnings)
    return groups, warnings


def read_csv_records(path: Path) -> tuple[list, str]:
    """Rows of a CSV as dicts (header checked) and the sha256 of its bytes."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ScalingError(f"steps table not found: {path}") from None
    except OSError as e:
        raise ScalingError(f"cannot read steps table {path}: {e.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ScalingError(f"steps table {path} is not UTF-8 text") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ScalingError(f"steps table {path} is empty (no header)")
    try:
        reader = csv.reader(lines, strict=True)
        header = [h.strip() for h in next(reader)]
        body = list(reader)
    except csv.Error as e:
        raise ScalingError(f"malformed CSV {path}: {e}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ScalingError(f"steps table {path} lacks required column(s) {', '.join(missing)} "
                           f"(header: {','.join(header)})")
    if len(set(header)) != len(header):
        raise ScalingError(f"steps table {path} has a repeated column name")
    records = []
    for i, fields in enumerate(body):
        if not any(f.strip() for f in fields):
            records.append(None)  # blank line: skipped, line numbers kept
            continue
        if len(fields) != len(header):
            raise ScalingError(f"malformed CSV {path}: line {i + 2} has {len(fields)} fields, "
                               f"header has {len(header)}")
        records.append(dict(zip(header, fields)))
    return records, hashlib.sha256(data).hexdigest()


def records_sha256(records: Sequence[Mapping]) -> str:
    """The sha256 that names a table of in-memory rows (a CSV is named by its bytes instead):
    the required and optional columns of each row, comma-joined, one line per row."""
    cols = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    canon = "\n".join(",".join(str(r.get(c, "")) for c in cols) for r in records)
    return hashlib.sha256(canon.encode()).hexdigest()


def load_steps(source: "str | os.PathLike", min_batch_sizes: int = MIN_BATCH_SIZES,
               where: Optional[Mapping] = None) -> StepsTable:
    """Read a steps table from a CSV file.

    Raises ``ScalingError`` (one line) for a missing file, a directory (read a sweep's runs with
    ``scaling.sweep.export.steps_table``), malformed CSV, missing column, non-positive or NaN
    values, duplicate rows that disagree, or a group with fewer than ``min_batch_sizes`` usable
    batch sizes. ``where``'s row keys (``model=NAME``) keep only the matching rows
    (``select_records``); the table keeps the whole file's hash.
    """
    path = Path(source)
    if path.is_dir():
        raise ScalingError(f"{path} is a directory, not a steps table; `scaling cbs {path}` reads "
                           f"its runs, or export them with `scaling steps {path} -o steps.csv`")
    records, digest = read_csv_records(path)
    return table_from_records(select_records(records, where), str(path), digest, min_batch_sizes)


def table_from_records(records: Sequence[Optional[Mapping]], source: str = "", sha256: str = "",
                       min_batch_sizes: int = MIN_BATCH_SIZES) -> StepsTable:
    """The StepsTable of dict rows (CSV records, or ``scaling.sweep.export.steps_rows``).

    Row i is reported as line i + 2 (a CSV's header is line 1); ``None`` entries (blank CSV
    lines) are skipped with their line numbers kept. ``sha256`` names the input (default:
    ``records_sha256``). Raises ``ScalingError`` as ``load_steps`` does.
    """
    digest = sha256 or records_sha256([r for r in records if r is not None])
    _check_one_model_per_group(records)
    rows, excluded = [], []
    for i, rec in enumerate(records):
        if rec is None:
            continue
        used, ex = parse_rows([rec], first_line=i + 2)
        rows += used
        excluded += ex
    if not rows:
        raise ScalingError(f"steps table {source} has no usable rows"
                           + (f" ({len(excluded)} censored/diverged)" if excluded else ""))
    groups, warnings = group_rows(rows, min_batch_sizes, excluded)
    warnings = list(warnings)
    if excluded:
        counts: dict = {}
        for e in excluded:
            counts[e.status] = counts.get(e.status, 0) + 1
        warnings.append("excluded rows: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return StepsTable(groups=tuple(groups), excluded=tuple(excluded), sha256=digest,
                      source=source, warnings=tuple(warnings))


def _check_one_model_per_group(records: Sequence[Optional[Mapping]]) -> None:
    """ScalingError if one (params, tokens) holds rows of several model names: configurations of
    one shape (a schedule, a momentum) whose minimum over the tuning grid would mix them."""
    names: dict = {}
    for r in records:
        model = str((r or {}).get("model") or "")
        if not model:
            continue
        try:
            key = (float(r["params"]), float(r["tokens"]))
        except (KeyError, TypeError, ValueError):
            continue  # reported by parse_rows with its line
        names.setdefault(key, set()).add(model)
    for (params, tokens), models in names.items():
        if len(models) > 1:
            raise ScalingError(f"params={_fmt(params)} tokens={_fmt(tokens)} holds the rows of {len(models)} models "
                               f"({', '.join(sorted(models))}); analyse one at a time with --where model=NAME")


SELECT_KEYS = ("params", "tokens", "tokens_per_param")
SELECT_RTOL = 0.02  # a group matches KEY=VALUE when within 2% (tokens_per_param is a rounded ratio)
# Keys matched exactly against a row's column, before rows form groups: a sweep export's model
# name, so that configurations of one shape (a schedule, a momentum) are analysed one at a time.
ROW_SELECT_KEYS = ("model",)


def parse_where(items: Sequence[str]) -> dict:
    """``["params=13824", "tokens_per_param=20", "model=d24-L2"]`` -> {key: value} (a number for
    the group keys, text for the row keys); ScalingError naming a bad item."""
    where = {}
    for item in items or ():
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not sep or key not in SELECT_KEYS + ROW_SELECT_KEYS:
            raise ScalingError(f"--where {item!r}: expected KEY=VALUE with KEY one of "
                               f"{', '.join(SELECT_KEYS + ROW_SELECT_KEYS)}")
        if key in ROW_SELECT_KEYS:
            if not value.strip():
                raise ScalingError(f"--where {item!r}: the value is empty")
            where[key] = value.strip()
            continue
        try:
            where[key] = float(value)
        except ValueError:
            raise ScalingError(f"--where {item!r}: {value!r} is not a number") from None
        if not math.isfinite(where[key]) or where[key] <= 0:
            raise ScalingError(f"--where {item!r}: the value must be a positive number")
    return where


def select_records(records: Sequence[Optional[Mapping]], where: Optional[Mapping]) -> list:
    """The records with every row key of ``where`` (``ROW_SELECT_KEYS``) equal to its value; the
    others become ``None`` so that the kept rows keep their line numbers. ScalingError naming the
    values present if no record matches."""
    keys = {k: str(v) for k, v in (where or {}).items() if k in ROW_SELECT_KEYS}
    if not keys:
        return list(records)
    kept = [r if r is not None and all(str(r.get(k, "")) == v for k, v in keys.items()) else None
            for r in records]
    if not any(r is not None for r in kept):
        k, v = next(iter(keys.items()))
        present = sorted({str(r.get(k, "")) for r in records if r is not None and r.get(k, "")})
        raise ScalingError(f"no row has {k}={v} ("
                           + (f"{k}s: {', '.join(present)})" if present else f"the table has no {k} column)"))
    return kept


def group_matches(params: float, tokens: float, where: Mapping) -> bool:
    """Whether a (params, tokens) group matches every group key of ``where`` within ``SELECT_RTOL``."""
    value = {"params": params, "tokens": tokens, "tokens_per_param": tokens / params}
    return all(abs(value[k] - v) <= SELECT_RTOL * v for k, v in where.items() if k in SELECT_KEYS)


def select_groups(table: StepsTable, where: Mapping[str, float]) -> StepsTable:
    """The table restricted to the groups matching every KEY=VALUE of ``where`` (params, tokens,
    or tokens_per_param = tokens / params), each within ``SELECT_RTOL``; row keys (``model``) are
    applied when the table is read (``select_records``). The input hash is kept:
    a fit on a selection still names the table it came from. ScalingError if nothing matches."""
    if not where:
        return table

    where = {k: v for k, v in where.items() if k not in ROW_SELECT_KEYS}  # applied to the rows
    if not where:
        return table
    kept = tuple(g for g in table.groups if group_matches(g.params, g.tokens, where))
    if not kept:
        have = ", ".join(f"params={g.params:.6g} tokens={g.tokens:.6g}" for g in table.groups)
        wanted = " ".join(f"{k}={v:g}" for k, v in where.items())
        raise ScalingError(f"no group matches {wanted} (groups: {have})")
    return StepsTable(groups=kept, excluded=table.excluded, sha256=table.sha256, source=table.source,
                      warnings=table.warnings)
