"""Synthetic steps tables drawn from known laws (for tests, the benchmark and the example).

Each group (N, D) gets B_noise = bn_c * (N / N0)^bn_a_params * (D / D0)^bn_a_tokens and
S_min = sm_c * (N / N0)^sm_a_params * (D / D0)^sm_a_tokens; steps are
S_min (1 + B_noise / B) times log-normal noise of sd ``noise`` (McCandlish et al. 2018 hyperbola).
Clearly synthetic: nothing here is a measurement.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from scaling.analysis.steps_table import REQUIRED_COLUMNS, Row, StepsTable, group_rows

REFERENCE_PARAMS = 1e6
REFERENCE_TOKENS = 2e7


@dataclass(frozen=True)
class TrueLaws:
    bn_c: float = 300.0
    bn_a_params: float = 0.0
    bn_a_tokens: float = 0.5
    sm_c: float = 400.0
    sm_a_params: float = 0.0
    sm_a_tokens: float = 0.3

    def b_noise(self, n, d):
        return self.bn_c * (n / REFERENCE_PARAMS) ** self.bn_a_params * (d / REFERENCE_TOKENS) ** self.bn_a_tokens

    def s_min(self, n, d):
        return self.sm_c * (n / REFERENCE_PARAMS) ** self.sm_a_params * (d / REFERENCE_TOKENS) ** self.sm_a_tokens


def synthetic_rows(groups, batch_sizes, laws: TrueLaws = TrueLaws(), noise: float = 0.03,
                   seeds: int = 1, seq_len: int = 128, rng=None) -> list:
    """Rows (one per group x batch x seed) of a synthetic steps table."""
    rng = rng or np.random.default_rng(0)
    rows = []
    for n, d in groups:
        for b in batch_sizes:
            true = laws.s_min(n, d) * (1 + laws.b_noise(n, d) / b)
            for s in range(seeds):
                rows.append(Row(params=float(n), tokens=float(d), batch_size=float(b),
                                steps=float(true * np.exp(noise * rng.standard_normal())),
                                seq_len=float(seq_len), seed=str(s) if seeds > 1 else None))
    return rows


def synthetic_table(groups, batch_sizes, laws: TrueLaws = TrueLaws(), noise: float = 0.03,
                    seeds: int = 1, seq_len: int = 128, rng=None) -> StepsTable:
    gs, warnings = group_rows(synthetic_rows(groups, batch_sizes, laws, noise, seeds, seq_len, rng))
    return StepsTable(groups=tuple(gs), sha256="synthetic", source="synthetic", warnings=tuple(warnings))


def to_csv(rows) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(REQUIRED_COLUMNS + ("seq_len", "seed"))
    for r in rows:
        w.writerow([f"{r.params:.10g}", f"{r.tokens:.10g}", f"{r.batch_size:g}", f"{r.steps:.6g}",
                    f"{r.seq_len:g}" if r.seq_len else "", r.seed or ""])
    return out.getvalue()
