"""End to end on the NQM: run directories -> steps table -> CBS -> law, against the exact CBS.

The runs are real NQM workload runs (``scaling.workloads.nqm``) written to disk; the protocol
(Definition 1 of Zhang et al. 2024: target from reference runs at B_ref over the lr grid, then
every (B, lr) chases it under a sample cap) is driven here in a few lines; the steps table goes
through the analysis module exactly as an LM sweep's would. (Its wall time is measured in
benchmarks/bench_nqm.py, not asserted here.)
"""

import csv
import math

import numpy as np
import pytest

from scaling import rundir
from scaling.analysis import critical_batch_sizes, fit_law, load_steps
from scaling.nqm import NQM, Optimizer, exact_sweep, lr_grid
from scaling.workloads.nqm import NQMWorkload

DIM = 64
BUDGETS = (2**11, 2**13, 2**15)
BATCHES = tuple(2**k for k in range(0, 10))
# 6 per decade below the stability limit: coarser grids make the Definition-1 CBS read off S(B)
# jump by up to 3x (docs/nqm.md, "lr-grid resolution")
LRS = tuple(lr_grid(NQM(dim=DIM), Optimizer(), points_per_decade=6, decades=2.5))
REF = 4
CAP_FACTOR = 2
W = NQMWorkload()


def lrs_for(batch):
    """Per-batch lr grid: SGD's best lr grows with B (perfect scaling), so lrs below B x the
    grid's smallest are never best; the exact-sweep comparison below checks that on the full grid."""
    return [lr for lr in LRS if lr >= LRS[0] * batch / REF or lr == LRS[-1]]


def drive_protocol(root, budget):
    """Definition-1 protocol through the workload; returns the steps-table rows of this budget."""
    base = {"dim": DIM, "tokens": budget}
    finals = []
    for lr in LRS:
        s = W.run(W.build_config({**base, "batch_size": REF, "lr": lr}), root / f"ref-{budget}-{lr:.4g}")
        if s["status"] == "done":
            finals.append(s["final_eval_loss"])
    target = min(finals)
    rows = []
    for b in BATCHES:
        best = math.inf
        for lr in lrs_for(b):
            run = root / f"run-{budget}-{b}-{lr:.4g}"
            s = W.run(W.build_config({**base, "batch_size": b, "lr": lr, "target_loss": target,
                                      "max_tokens": CAP_FACTOR * budget}), run)
            assert rundir.read_status(run) == s["status"]
            if s["status"] == "done":
                best = min(best, s["steps_to_target"])
        if math.isfinite(best):
            rows.append({"params": W.params(W.build_config(base)), "tokens": budget, "batch_size": b,
                         "steps": repr(best), "seq_len": 1, "target_loss": repr(target), "status": "done"})
    return target, rows


def run_pipeline(root) -> dict:
    """Every budget's protocol into ``root``, its steps.csv, the CBS per budget, the law against D,
    and the exact sweeps to compare with."""
    targets, rows = {}, []
    for d in BUDGETS:
        targets[d], r = drive_protocol(root, d)
        rows += r
    steps_csv = root / "steps.csv"
    with open(steps_csv, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    cbs = critical_batch_sizes(load_steps(steps_csv), reference_batch=REF, n_resamples=200)
    law = fit_law(cbs, "tokens")
    exact = {d: exact_sweep(NQM(dim=DIM), Optimizer(), BATCHES, LRS, d, REF, cap_factor=CAP_FACTOR)
             for d in BUDGETS}
    return {"cbs": cbs, "law": law, "exact": exact, "targets": targets}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    return run_pipeline(tmp_path_factory.mktemp("nqm_runs"))


def test_run_directories_reproduce_the_exact_sweep(pipeline):
    for g in pipeline["cbs"].groups:
        ex = pipeline["exact"][int(g.tokens)]
        assert pipeline["targets"][int(g.tokens)] == pytest.approx(ex.target, rel=1e-12)
        s = ex.steps_to_target
        ok = np.isfinite(s)
        np.testing.assert_allclose(g.steps, s[ok], rtol=1e-9)
        assert g.batch_sizes == tuple(float(b) for b in ex.batch_sizes[ok])


def test_analysis_recovers_direct_cbs(pipeline):
    for g in pipeline["cbs"].groups:
        direct = pipeline["exact"][int(g.tokens)].cbs()
        assert direct.bounded
        assert g.cbs_empirical == pytest.approx(direct.cbs, rel=1e-9)  # same definition on the same curve
        assert g.cbs == pytest.approx(direct.cbs, rel=0.3)  # hyperbola fit vs the exact curve
        assert g.cbs_ci[0] <= g.cbs <= g.cbs_ci[1]


def test_law_says_cbs_grows_with_data(pipeline):
    law = pipeline["law"].laws["cbs"]
    direct = [pipeline["exact"][d].cbs().cbs for d in BUDGETS]
    slope = np.polyfit(np.log(BUDGETS), np.log(direct), 1)[0]
    assert 0.1 < law.exponents["tokens"] < 1.5
    assert law.exponents["tokens"] == pytest.approx(slope, abs=0.25)
    assert all(a < b for a, b in zip(direct, direct[1:]))
