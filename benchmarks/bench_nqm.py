"""Benchmark: wall time of the NQM paths the tests run (the timings the tests no longer assert).

Times, in this process, exactly what the tests build (their own functions, imported from tests/):

- ``workload_run``: one NQM workload run, tests/test_nqm_workload.py's reference run
  (dim 100, B 8, D 8192 samples, run directory written);
- ``exact_sweeps``: the three exact sweeps of tests/test_nqm_scaling.py (SGD, momentum 0.9,
  Adam-like q 0.5; 15 batch sizes x 41 lrs each);
- ``pipeline``: tests/test_nqm_pipeline.py's run directories -> steps table -> CBS -> law
  (dim 64, three budgets);
- ``figs_fixture``: tests/test_figs_paper.py's fixture, its NQM grid through
  ``scaling.sweep.run_sweep`` (every run, fresh directory), the steps.csv export, CBS and a law;
- ``figs``: every paper_figs/ script on that fixture.

Each is timed once cold, then REPEATS times (fresh directories, so a sweep never resumes);
wall-clock (``perf_counter``) and this process's CPU seconds (``process_time``, which other jobs
on a shared machine inflate less). ``former_test_limit_s`` is the bound the test asserted before
the timing moved here. Writes benchmarks/results/nqm_cpu.json with the machine.
Usage: JAX_PLATFORMS=cpu python benchmarks/bench_nqm.py
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import matplotlib
import numpy as np
import scipy

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the tests' own builders (and their sweep_helpers)

import test_figs_paper as figs_test  # noqa: E402
import test_nqm_pipeline as pipeline_test  # noqa: E402
import test_nqm_scaling as scaling_test  # noqa: E402
import test_nqm_workload as workload_test  # noqa: E402

from scaling.machine import cpu_model, load_average  # noqa: E402
from scaling.plots import FigureResult  # noqa: E402
from scaling.store import atomic_write_json  # noqa: E402

OUT = REPO / "benchmarks" / "results" / "nqm_cpu.json"
REPEATS = {"workload_run": 20, "exact_sweeps": 3, "pipeline": 3, "figs_fixture": 3, "figs": 3}
FORMER_TEST_LIMIT_S = {"workload_run": 0.5, "exact_sweeps": 10.0, "pipeline": 10.0, "figs": 60.0}


def timed(fn, repeats: int) -> tuple:
    """(statistics, last result) of ``fn()``: the first (cold) call, then ``repeats`` more."""
    walls, cpus, result = [], [], None
    for _ in range(repeats + 1):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    rest, rest_cpu = walls[1:], cpus[1:]
    stats = {"first_s": walls[0], "median_s": float(np.median(rest)), "min_s": float(np.min(rest)),
             "max_s": float(np.max(rest)), "median_cpu_s": float(np.median(rest_cpu)), "repeats": repeats}
    return stats, result


def fresh(tmp: Path, prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=tmp))


def main() -> None:
    out, checks = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        w = workload_test.W
        config = w.build_config(workload_test.REFERENCE_SPEC)
        out["workload_run"], summary = timed(lambda: w.run(config, fresh(tmp, "run")), REPEATS["workload_run"])
        checks["workload_run_final_step"] = summary["final_step"]

        out["exact_sweeps"], sweeps = timed(scaling_test.run_sweeps, REPEATS["exact_sweeps"])
        checks["exact_sweeps_cbs"] = {f"momentum={opt.momentum}, q={opt.q}": s.cbs().cbs
                                      for opt, s in sweeps.items()}

        out["pipeline"], pipe = timed(lambda: pipeline_test.run_pipeline(fresh(tmp, "pipeline")),
                                      REPEATS["pipeline"])
        checks["pipeline_cbs"] = [g.cbs for g in pipe["cbs"].groups]
        checks["pipeline_law_a_tokens"] = pipe["law"].laws["cbs"].exponents["tokens"]

        out["figs_fixture"], fx = timed(lambda: figs_test.build_fixture(fresh(tmp, "figs")), REPEATS["figs_fixture"])
        checks["figs_fixture_runs"] = sum(1 for _ in (fx["runs"] / figs_test.SWEEP).glob("*/config.json"))
        checks["figs_fixture_cbs"] = [g.cbs for g in fx["result"].groups]

        out["figs"], made = timed(lambda: figs_test.make_figures(fx), REPEATS["figs"])
        checks["figures_written"] = sorted(n for n, r in made.items() if isinstance(r, FigureResult))
    for name, limit in FORMER_TEST_LIMIT_S.items():
        out[name]["former_test_limit_s"] = limit
    result = {
        "benchmark": "NQM paths of the tests: one workload run, the exact sweeps of test_nqm_scaling, the "
                     "pipeline of test_nqm_pipeline, the figure tests' real-sweep fixture and every paper figure",
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average": load_average(),
                    "python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
                    "matplotlib": matplotlib.__version__},
        **out,
        "check": checks,
        "note": "wall-clock on a machine shared with other jobs; median_cpu_s is this process's CPU time",
    }
    atomic_write_json(OUT, result)
    print({k: round(v["median_s"], 4) for k, v in out.items()})


if __name__ == "__main__":
    main()
