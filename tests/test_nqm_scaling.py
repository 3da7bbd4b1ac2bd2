"""Batch-size scaling on the NQM (Zhang et al. 2019): perfect scaling, plateau, and the CBS
shift from momentum and preconditioning; the Definition-1 CBS read off a curve. (The sweeps'
wall time is measured in benchmarks/bench_nqm.py, not asserted here.)"""

import math

import numpy as np
import pytest

from scaling.analysis.definitions import cbs_from_curve
from scaling.nqm import NQM, Optimizer, exact_sweep, lr_grid

PROBLEM = NQM(dim=200, p=1.0)
BATCHES = 2 ** np.arange(0, 15)
BUDGET = 2**14
REF = 4
CAP = 64  # sample cap / budget: large enough to see the plateau
SGD, MOMENTUM, PRECOND = Optimizer(), Optimizer(momentum=0.9), Optimizer(q=0.5)


def run_sweeps() -> dict:
    """Optimizer -> its exact sweep: 15 batch sizes x a 41-point lr grid each."""
    return {opt: exact_sweep(PROBLEM, opt, BATCHES, lr_grid(PROBLEM, opt, points_per_decade=8, decades=5),
                             BUDGET, REF, cap_factor=CAP) for opt in (SGD, MOMENTUM, PRECOND)}


@pytest.fixture(scope="module")
def sweeps():
    return run_sweeps()


def test_sgd_perfect_scaling_then_plateau(sweeps):
    s = sweeps[SGD].steps_to_target
    finite = s[np.isfinite(s)]
    assert len(finite) >= 8
    ratios = finite[:-1] / finite[1:]  # S(B) / S(2B)
    assert np.all(ratios[:3] == pytest.approx(2.0, rel=0.12)), ratios  # doubling a small batch halves S
    assert np.all(ratios[-2:] < 1.2), ratios  # large batches: no more speed-up
    assert np.all(ratios > 0.98), ratios  # S(B) does not increase with B
    # diminishing returns in between: the ratio falls from ~2 to ~1
    assert ratios[:3].mean() - ratios[-2:].mean() > 0.7


def test_momentum_and_preconditioning_raise_cbs(sweeps):
    cbs = {opt: sweeps[opt].cbs().cbs for opt in (SGD, MOMENTUM, PRECOND)}
    assert all(sweeps[opt].cbs().bounded for opt in (SGD, MOMENTUM, PRECOND))
    assert cbs[MOMENTUM] > 2 * cbs[SGD], cbs
    assert cbs[PRECOND] > 2 * cbs[SGD], cbs


def test_target_is_definition_one(sweeps):
    r = sweeps[SGD]
    i = list(r.batch_sizes).index(REF)
    # the reference's best lr reaches the target exactly at the end of its budget (or before)
    assert np.nanmin(r.steps[i]) <= BUDGET // REF + 1e-9
    # and the target is the best final loss: no lr beats it within the budget
    assert np.nanmin(r.steps[i]) == pytest.approx(BUDGET // REF, rel=1e-6)


def test_cbs_from_curve_hyperbola_closed_form():
    """On an exact hyperbola S = S_min (1 + B_noise / B) the CBS is (1 + eps) B_ref + eps B_noise."""
    b_noise, s_min, ref, eps = 300.0, 50.0, 16, 0.2
    grid = 2.0 ** np.arange(0, 16, 0.125)
    got = cbs_from_curve(grid, s_min * (1 + b_noise / grid), ref, eps)
    assert got.cbs == pytest.approx((1 + eps) * ref + eps * b_noise, rel=2e-3)
    assert got.lower <= got.cbs <= got.upper


def test_cbs_from_curve_edges():
    b = [1, 2, 4, 8]
    assert cbs_from_curve(b, [80, 40, 20, 10], 1).upper == math.inf  # perfect scaling throughout
    censored = cbs_from_curve(b, [80, 40, None, None], 1)
    assert censored.cbs == 2 and censored.upper == 4
    with pytest.raises(ValueError):
        cbs_from_curve(b, [None, 40, 20, 10], 1)
    with pytest.raises(ValueError):
        cbs_from_curve(b, [80, 40, 20, 10], 3)
