"""What the figures read: sweeps under runs/, their steps tables, CBS results and fitted laws.

A sweep is what the sweep reader finds under ``runs/`` (``scaling.sweep.records.find_sweeps``,
the rule the CLI uses: a directory holding sweep.json, an exported ``steps.csv`` or run
directories, at ``runs/<sweep>`` or one level deeper, e.g. ``runs/nqm_study/<case>``); its
steps table is the CSV, else the run directories' (both through
``scaling.sweep.export.load_table``). CBS per group comes from ``critical_batch_sizes`` with the sweep's
reference batch (from a fit file made on the same table, else the grid file, else the smallest
batch), laws from a fit file in ``fits/`` (or the sweep directory) whose input hash equals the
table's, else fitted here by ``fit_law``. Results are cached per process: ``scaling figs``
computes each sweep's bootstrap once for all figures.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional

from scaling import rundir
from scaling.errors import ScalingError
from scaling.sweep.protocol import MANIFEST
from scaling.sweep.records import STEPS_FILE, find_sweeps, is_sweep_dir, run_dirs

GRIDS_DIR = "grids"
STUDY_FILE = "study.json"
# Default sweep, in order of preference: the shipped studies (the GPU reference; the CPU findings
# study, whose CBS sit at least 4x above the smallest batch; the CPU reference, which alone logged
# the noise scale), the LM demo, the NQM demo, the NQM study's canonical case (p = 1, plain SGD);
# any other sweep after these, by name. A figure takes the first whose data it can draw.
PREFERRED_SWEEPS = ("gpu_reference", "findings", "cpu_reference", "reference", "demo", "nqm_demo",
                    "nqm_study/p1_m0_q0")
CHINCHILLA_TOKENS_PER_PARAM = 20.0   # Hoffmann et al. 2022: compute-optimal D ~ 20 N
NQM = "nqm"
MAX_TRIED = 64        # sweeps examined before a figure gives up


@dataclass(frozen=True)
class SweepSource:
    """One sweep directory under runs/."""

    name: str
    path: Path
    steps_csv: Optional[Path]
    run_dirs: tuple
    workload: str
    reference_batch: Optional[float]

    @property
    def synthetic(self) -> bool:
        return self.workload == NQM

    def describe(self) -> str:
        if self.synthetic:
            return (f"sweep `{self.name}`: the noisy quadratic model (scaling.nqm), synthetic -- exact "
                    f"expected loss of a quadratic with curvature-shaped gradient noise, not a language "
                    f"model; `params` is the problem dimension, `tokens` the number of samples")
        kind = "shipped reference sweep" if "reference" in self.name else "sweep"
        return f"{kind} `{self.name}`: measured language-model training runs ({self.workload or 'lm'} workload)"

    # unit words for axis labels and legends
    def batch_unit(self, seq_len: Optional[float]) -> str:
        if self.synthetic:
            return "samples"
        return f"sequences of {seq_len:g} tokens" if seq_len else "sequences"

    def size_label(self, params: float) -> str:
        from scaling.plots.style import human
        return f"dim {human(params)}" if self.synthetic else f"N = {human(params)}"

    def data_label(self, tokens: float) -> str:
        from scaling.plots.style import human
        return f"D = {human(tokens)} samples" if self.synthetic else f"D = {human(tokens)} tokens"

    @property
    def size_axis(self) -> str:
        return "problem dimension (NQM analogue of model size)" if self.synthetic else \
            "model size N (non-embedding parameters)"

    @property
    def data_axis(self) -> str:
        return "data size D (samples)" if self.synthetic else "data size D (tokens)"


def _read_json(path: Path) -> Optional[dict]:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def _grid(runs_dir: Path, top: str) -> dict:
    import yaml

    path = runs_dir / GRIDS_DIR / f"{top}.yaml"
    try:
        d = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return d if isinstance(d, dict) else {}


def _sweep_at(runs_dir: Path, path: Path) -> SweepSource:
    steps = path / STEPS_FILE
    runs = tuple(run_dirs(path))
    name = path.relative_to(runs_dir).as_posix() if path != runs_dir else path.name
    top = name.split("/")[0]
    grid = _grid(runs_dir, top)
    workload = ""
    if runs:
        workload = str((_read_json(runs[0] / rundir.CONFIG) or {}).get("workload", ""))
    workload = workload or str(grid.get("workload", "")) or (NQM if top.startswith(NQM) else "")
    ref = grid.get("reference_batch")
    if ref is None and (path / MANIFEST).is_file():  # the sweep's own record of its grid
        ref = (_read_json(path / MANIFEST) or {}).get("reference_batch")
    for study in (path / STUDY_FILE, path.parent / STUDY_FILE):
        if ref is None and study.is_file():
            ref = (_read_json(study) or {}).get("reference_batch")
    ref = float(ref) if isinstance(ref, (int, float)) and ref > 0 else None
    return SweepSource(name=name, path=path, steps_csv=steps if steps.is_file() else None, run_dirs=runs,
                       workload=workload, reference_batch=ref)


def _order(s: SweepSource) -> tuple:
    if s.name in PREFERRED_SWEEPS:
        return (0, PREFERRED_SWEEPS.index(s.name), s.name)
    pref = [i for i, p in enumerate(PREFERRED_SWEEPS) if s.name.startswith(p)]
    return (1, pref[0] if pref else len(PREFERRED_SWEEPS), s.name)


def discover(runs_dir) -> list:
    """Every sweep under ``runs_dir`` (``find_sweeps``), preferred first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return sorted((_sweep_at(runs_dir, p) for p in find_sweeps(runs_dir)), key=_order)


def pick(runs_dir, sweep: Optional[str], need: Callable, what: str):
    """The first sweep (``sweep`` only, when given) for which ``need(s)`` returns data.

    ``need`` returns the data the figure plots or a string saying what is missing. Returns
    (sweep, data), or (None, one-line reason) when no sweep qualifies.
    """
    named = Path(runs_dir) / sweep if sweep is not None else None
    if named is not None and named.is_dir() and is_sweep_dir(named):  # runs_dir/<sweep>, found without a search
        sweeps = [_sweep_at(Path(runs_dir), named)]
    else:
        sweeps = discover(runs_dir)
    if sweep is not None:
        sweeps = [s for s in sweeps if s.name == sweep]
        if not sweeps:
            return None, f"no sweep named {sweep!r} under {runs_dir}"
    if not sweeps:
        return None, f"no sweep with a steps table or run directories under {runs_dir} (needs {what})"
    reasons = []
    for s in sweeps:
        if len(reasons) >= MAX_TRIED:
            break
        try:
            out = need(s)
        except ScalingError as e:
            out = str(e)
        if not isinstance(out, str):
            return s, out
        reasons.append(f"{s.name}: {out}")
    more = len(sweeps) - 1
    return None, f"needs {what}; {reasons[0]}" + (f" (and {more} other sweep(s) lack it)" if more else "")


@lru_cache(maxsize=None)
def _table(path: str, mtime: float):
    from scaling.sweep.export import load_table
    return load_table(path)


def steps_table(s: SweepSource):
    """The sweep's StepsTable (of steps.csv, else of the run directories)."""
    return _table(*_source(s))


@lru_cache(maxsize=None)
def _sha(path: str, mtime: float) -> str:
    from scaling.sweep.export import table_sha256
    return table_sha256(path)


def fit_files(s: SweepSource, fits_dir) -> list:
    """(path, LawFit) of every fit file in fits_dir or the sweep dir fitted on this exact table."""
    from scaling.analysis import load_law

    sha = _sha(*_source(s))
    out = []
    for d in (Path(fits_dir), s.path):
        if not d.is_dir():
            continue
        for p in sorted(d.glob("*.json")):
            raw = _read_json(p)
            if not raw or not str(raw.get("format", "")).startswith("scaling.fit"):
                continue
            if (raw.get("input") or {}).get("sha256") != sha:
                continue
            try:
                out.append((p, load_law(p)))
            except ScalingError:
                continue
    return out


@dataclass(frozen=True)
class CBSSettings:
    reference_batch: Optional[float]
    overhead: float
    model: str


def cbs_settings(s: SweepSource, fits_dir) -> CBSSettings:
    """Definition-1 settings: those of a fit file on this table, else the sweep's reference batch."""
    from scaling.analysis import DEFAULT_OVERHEAD

    for _, fit in fit_files(s, fits_dir):
        ref = fit.meta.get("reference_batch")
        if isinstance(ref, (int, float)):
            return CBSSettings(float(ref), float(fit.meta.get("overhead", DEFAULT_OVERHEAD)),
                               str(fit.meta.get("step_model", "hyperbola")))
    return CBSSettings(s.reference_batch, DEFAULT_OVERHEAD, "hyperbola")


@lru_cache(maxsize=None)
def _cbs(path: str, mtime: float, settings: CBSSettings):
    from scaling.analysis import critical_batch_sizes
    return critical_batch_sizes(_table(path, mtime), reference_batch=settings.reference_batch,
                                overhead=settings.overhead, model=settings.model)


def _source(s: SweepSource) -> tuple:
    src = s.steps_csv if s.steps_csv is not None else s.path
    return str(src), src.stat().st_mtime


def cbs_result(s: SweepSource, fits_dir):
    """``critical_batch_sizes`` of the sweep's table with ``cbs_settings`` (cached)."""
    return _cbs(*_source(s), cbs_settings(s, fits_dir))


def cbs_groups(s: SweepSource, fits_dir, keys) -> tuple:
    """(CBSResult, its GroupCBS for ``keys`` = [(params, tokens)], in that order)."""
    result = cbs_result(s, fits_dir)
    by = {(g.params, g.tokens): g for g in result.groups}
    return result, [by[k] for k in keys]


def keys(groups) -> list:
    return [(g.params, g.tokens) for g in groups]


def law_for(s: SweepSource, fits_dir, result, groups, against: str):
    """(LawFit, source) for ``groups``: a matching fit file if one was fitted on exactly these
    groups against ``against``, else ``fit_law`` on them here."""
    from scaling.analysis import fit_law

    keys = sorted((g.params, g.tokens) for g in groups)
    for path, fit in fit_files(s, fits_dir):
        fitted = sorted((g["params"], g["tokens"]) for g in fit.meta.get("groups", []))
        if ",".join(fit.variables) == against and fitted == keys:
            return fit, display_path(path)
    sub = dataclasses.replace(result, groups=tuple(groups))
    return fit_law(sub, against), "fitted by scaling.analysis.fit_law on these groups"


def display_path(path: Path) -> str:
    """``path`` relative to the current directory when inside it, else its name (captions must
    not name the machine's directories, so reruns elsewhere write the same bytes)."""
    from scaling.plots.output import display_path as shown
    s = shown(path)
    return s if not Path(s).is_absolute() else Path(path).name


# --- group selections (which curves a figure shows) -------------------------------------------

def chinchilla_groups(groups) -> list:
    """Per model size, the group whose D / N is closest to 20 (Chinchilla), by ascending N."""
    best = {}
    for g in groups:
        d = abs(math.log(g.tokens / g.params / CHINCHILLA_TOKENS_PER_PARAM))
        if g.params not in best or d < best[g.params][0]:
            best[g.params] = (d, g)
    return [best[p][1] for p in sorted(best)]


def data_series(groups) -> list:
    """Groups of the model size with the most data sizes (ties: the larger), by ascending D."""
    by = {}
    for g in groups:
        by.setdefault(g.params, []).append(g)
    p = max(by, key=lambda k: (len(by[k]), k))
    return sorted(by[p], key=lambda g: g.tokens)


def size_series(groups) -> list:
    """Groups of the data size with the most model sizes (ties: the larger), by ascending N."""
    by = {}
    for g in groups:
        by.setdefault(g.tokens, []).append(g)
    t = max(by, key=lambda k: (len(by[k]), k))
    return sorted(by[t], key=lambda g: g.params)


# --- run directories split by a config setting (schedules, width vs depth) --------------------

def _dig(d: dict, dotted: str):
    for k in dotted.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def runs_by(s: SweepSource, label: Callable) -> dict:
    """label(config dict) -> key or None; key -> the steps-table rows (``scaling.sweep.export``)
    of the sweep's trained runs (reference and chase; not those censored without training)."""
    from scaling.sweep.export import steps_rows

    out: dict = {}
    for row in steps_rows(s.path):
        if not row["run_id"] or not (s.path / row["run_id"]).is_dir():
            continue
        key = label((rundir.read_config(s.path / row["run_id"]) or {}).get("config", {}))
        if key is not None:
            out.setdefault(key, []).append(row)
    return out


def groups_from_records(records) -> list:
    """Steps-table groups (``scaling.analysis.steps_table.group_rows``: S(B) the minimum over lr,
    seeds averaged after; censored rows count as tried)."""
    from scaling.analysis.steps_table import group_rows, parse_rows

    rows, excluded = parse_rows(records)
    groups, _ = group_rows(rows, excluded=excluded)
    return groups
