"""Benchmark: per-group step-model fits, CBS and a 1000-resample bootstrap, 5 groups x 9 batch sizes.

Times ``critical_batch_sizes`` (point fits + 1000 bootstrap refits per group, vectorised) plus
``fit_law`` (1000-resample law bootstrap for CBS, S_min and B_noise, with leave-one-out), and, in
the same run, a naive baseline: one cold-started scipy.optimize.least_squares per resample.
Writes benchmarks/bench_analysis.json. Usage: python benchmarks/bench_analysis.py
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import scipy

from scaling.analysis import critical_batch_sizes, fit_law
from scaling.analysis.synthetic import TrueLaws, synthetic_table
from scaling.machine import cpu_model

GROUPS = [(1e6, 2e7 * 4 ** k) for k in range(5)]
BATCHES = 2.0 ** np.arange(4, 13)
RESAMPLES = 1000
REPEATS = 5
NAIVE_RESAMPLES = 100  # per group; the naive baseline is timed on fewer and scaled per resample




def pipeline(table):
    result = critical_batch_sizes(table, n_resamples=RESAMPLES)
    return result, fit_law(result, "tokens")


def naive(table, n):
    """Cold-started least_squares per resample (what the vectorised path avoids)."""
    from scipy.optimize import least_squares

    rng = np.random.default_rng(0)
    for g in table.groups:
        x, y = np.log(g.batch_sizes), np.log(g.steps)
        for _ in range(n):
            yy = y + 0.03 * rng.standard_normal(len(y))
            least_squares(lambda p: p[0] + np.logaddexp(0, p[1] - x) - yy, [np.mean(yy), np.mean(x)])


def main() -> None:
    table = synthetic_table(GROUPS, BATCHES, TrueLaws(), noise=0.03, rng=np.random.default_rng(0))
    t0 = time.perf_counter()
    pipeline(table)
    first = time.perf_counter() - t0
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        result, fit = pipeline(table)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    naive(table, NAIVE_RESAMPLES)
    naive_per_resample = (time.perf_counter() - t0) / (len(GROUPS) * NAIVE_RESAMPLES)
    ours_per_resample = float(np.median(times)) / (len(GROUPS) * RESAMPLES)
    try:
        import jax
        jax_version = jax.__version__
    except Exception:  # noqa: BLE001 - recorded, not required
        jax_version = None
    out = {
        "benchmark": "analysis: 5 groups x 9 batch sizes, step-model fits + CBS + 1000-resample bootstrap "
                     "(groups and laws)",
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__, "scipy": scipy.__version__, "jax": jax_version},
        "resamples": RESAMPLES, "repeats": REPEATS,
        "first_call_s": first, "median_s": float(np.median(times)), "min_s": float(np.min(times)),
        "max_s": float(np.max(times)),
        "naive_cold_least_squares_per_resample_s": naive_per_resample,
        "vectorised_per_resample_s": ours_per_resample,
        "speedup_vs_naive": naive_per_resample / ours_per_resample,
        "naive_extrapolated_total_s": naive_per_resample * len(GROUPS) * RESAMPLES,
        "check": {"cbs": [g.cbs for g in result.groups], "cbs_law_a_tokens": fit.cbs.exponents["tokens"]},
        "note": "2-core machine shared with other jobs; wall-clock times",
    }
    path = Path(__file__).with_suffix(".json")
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("first_call_s", "median_s", "speedup_vs_naive")}, indent=2))


if __name__ == "__main__":
    main()
