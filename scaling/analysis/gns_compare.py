"""The gradient noise scale B_simple against the sweep's measured B_noise and CBS, per group.

B_simple = tr(Sigma)/|G|^2 (McCandlish et al. 2018, App. A; ``scaling.lm.gns``) is logged by runs
with ``gns: true`` and reaches the steps table as the optional column ``b_simple`` (the value
at the run's target crossing; ``steps_table.B_SIMPLE_COLUMN``). Per (params, tokens) group of a ``scaling cbs`` result this
module takes the median B_simple over the group's runs at the reference batch B_ref (or over
all its runs when none at B_ref measured it) and reports the ratios B_simple / B_noise (the
step-model fit, McCandlish's B_crit) and B_simple / CBS (Zhang et al. 2024, Definition 1).
Across groups: the Pearson correlation of the logs and the geometric-mean ratio. McCandlish et
al. expect B_simple to track B_noise up to a factor; Merrill et al. 2025 (arXiv:2505.23971)
report it can badly underestimate the measured CBS (docs/gns.md). All functions are pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import median
from typing import Mapping, Optional, Sequence

import numpy as np

from scaling.analysis.steps_table import B_SIMPLE_COLUMN, USED_STATUSES

MIN_GROUPS_FOR_CORRELATION = 3  # two points always lie on a line
RELATIVE_TOLERANCE = 1e-9  # matching a row's (params, tokens, batch_size) to a group


@dataclass(frozen=True)
class GroupGNS:
    params: float
    tokens: float
    b_simple: float  # median over the runs used, in sequences
    n_runs: int
    at_reference: bool  # True: runs at B_ref; False: all the group's runs (none at B_ref measured it)
    reference_batch: float
    b_noise: float
    cbs: float
    ratio_b_noise: float  # b_simple / b_noise
    ratio_cbs: float  # b_simple / cbs


@dataclass(frozen=True)
class GNSComparison:
    groups: tuple
    log_corr_b_noise: Optional[float]  # Pearson r of (log b_simple, log b_noise) across groups
    log_corr_cbs: Optional[float]
    geo_mean_ratio_b_noise: Optional[float]  # exp(mean log(b_simple / b_noise))
    geo_mean_ratio_cbs: Optional[float]
    missing: tuple  # (params, tokens) of groups without any B_simple

    def to_dict(self) -> dict:
        return {"groups": [vars(g) for g in self.groups], "log_corr_b_noise": self.log_corr_b_noise,
                "log_corr_cbs": self.log_corr_cbs, "geo_mean_ratio_b_noise": self.geo_mean_ratio_b_noise,
                "geo_mean_ratio_cbs": self.geo_mean_ratio_cbs, "missing": [list(m) for m in self.missing]}


def _float(x) -> Optional[float]:
    if x is None or (isinstance(x, str) and not x.strip()):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _close(a, b) -> bool:
    return a is not None and b is not None and math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE)


def group_b_simple(records: Sequence[Mapping], params: float, tokens: float, reference_batch: float):
    """(median B_simple, number of runs, at_reference) of one group; (None, 0, False) without data.

    Uses the rows of finished runs (status in ``USED_STATUSES``) with a positive ``b_simple``.
    """
    found = []
    for r in records:
        if r is None or str(r.get("status") or "").strip().lower() not in USED_STATUSES:
            continue
        b = _float(r.get(B_SIMPLE_COLUMN))
        if b is None or b <= 0 or not (_close(_float(r.get("params")), params)
                                        and _close(_float(r.get("tokens")), tokens)):
            continue
        found.append((_float(r.get("batch_size")), b))
    at_ref = [b for batch, b in found if _close(batch, reference_batch)]
    if at_ref:
        return median(at_ref), len(at_ref), True
    if found:
        return median(b for _, b in found), len(found), False
    return None, 0, False


def log_correlation(x: Sequence[float], y: Sequence[float]) -> Optional[float]:
    """Pearson correlation of log x and log y; None with fewer than 3 points or no spread."""
    if len(x) < MIN_GROUPS_FOR_CORRELATION:
        return None
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    if np.ptp(lx) == 0 or np.ptp(ly) == 0:
        return None
    return float(np.corrcoef(lx, ly)[0, 1])


def geometric_mean(values: Sequence[float]) -> Optional[float]:
    return float(np.exp(np.mean(np.log(np.asarray(values, float))))) if len(values) else None


def compare_gns(cbs_result, steps_table: Sequence[Mapping]) -> GNSComparison:
    """Compare B_simple with each group of ``cbs_result`` (a ``CBSResult``).

    ``steps_table``: the steps-table records as dicts (``scaling.sweep.export.load_records`` of
    a CSV or a runs directory) carrying the optional ``b_simple`` column. Groups whose runs have no
    B_simple are listed in ``missing``.
    """
    groups, missing = [], []
    for g in cbs_result.groups:
        b, n, at_ref = group_b_simple(steps_table, float(g.params), float(g.tokens), float(g.reference_batch))
        if b is None or not (g.b_noise and g.b_noise > 0 and g.cbs and g.cbs > 0):
            missing.append((g.params, g.tokens))
            continue
        groups.append(GroupGNS(params=float(g.params), tokens=float(g.tokens), b_simple=float(b), n_runs=n,
                               at_reference=at_ref, reference_batch=float(g.reference_batch),
                               b_noise=float(g.b_noise), cbs=float(g.cbs), ratio_b_noise=b / float(g.b_noise),
                               ratio_cbs=b / float(g.cbs)))
    bs = [g.b_simple for g in groups]
    return GNSComparison(
        groups=tuple(groups),
        log_corr_b_noise=log_correlation(bs, [g.b_noise for g in groups]),
        log_corr_cbs=log_correlation(bs, [g.cbs for g in groups]),
        geo_mean_ratio_b_noise=geometric_mean([g.ratio_b_noise for g in groups]),
        geo_mean_ratio_cbs=geometric_mean([g.ratio_cbs for g in groups]),
        missing=tuple(missing))


def render(comparison: GNSComparison) -> str:
    """A text table of the comparison (the ``scaling cbs --gns`` output)."""
    from scaling.analysis.report import fmt, table

    if not comparison.groups:
        return "B_simple: no run of these groups logged the gradient noise scale (train with gns: true)"
    rows = [[fmt(g.params), fmt(g.tokens), fmt(g.b_simple), g.n_runs, "B_ref" if g.at_reference else "all",
             fmt(g.b_noise), fmt(g.cbs), fmt(g.ratio_b_noise, 3), fmt(g.ratio_cbs, 3)] for g in comparison.groups]
    c = comparison
    foot = (f"across {len(c.groups)} groups: geometric-mean B_simple/B_noise {fmt(c.geo_mean_ratio_b_noise, 3)}, "
            f"B_simple/CBS {fmt(c.geo_mean_ratio_cbs, 3)}; log-log Pearson r with B_noise "
            f"{fmt(c.log_corr_b_noise, 3)}, with CBS {fmt(c.log_corr_cbs, 3)}")
    head = "Gradient noise scale B_simple (McCandlish et al. 2018) vs the sweep (sequences)"
    return head + "\n" + table(["params", "tokens", "b_simple", "n_runs", "runs", "b_noise", "cbs",
                                "b_simple/b_noise", "b_simple/cbs"], rows) + "\n" + foot
