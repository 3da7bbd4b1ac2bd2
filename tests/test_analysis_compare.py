"""Two groups' CBS ratio and its interval (scaling.analysis.compare) on exact and noisy hyperbolas."""

import numpy as np
import pytest

from scaling.analysis import critical_batch_sizes
from scaling.analysis.compare import cbs_ratio
from scaling.analysis.steps_table import table_from_records

BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)


def group(b_noise, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    rows = [{"params": 1000, "tokens": 1e5, "batch_size": b,
             "steps": 1000 * (1 + b_noise / b) * float(np.exp(noise * rng.standard_normal()))} for b in BATCHES]
    (g,) = critical_batch_sizes(table_from_records(rows), n_resamples=400).groups
    return g


def test_the_ratio_of_two_exact_hyperbolas_is_the_ratio_of_their_cbs():
    a, b = group(64.0), group(16.0)
    r = cbs_ratio(a, b, a_name="wide", b_name="narrow")
    # B* = 1.2 B_ref + 0.2 B_noise: 14.0 / 4.4
    assert r.ratio == pytest.approx(14.0 / 4.4, rel=1e-3)
    assert r.ci[0] <= r.ratio <= r.ci[1] and not r.includes_one
    assert r.to_dict()["a"] == "wide"


def test_two_noisy_measurements_of_one_curve_include_one_and_distinct_curves_do_not():
    same = cbs_ratio(group(32.0, noise=0.05, seed=1), group(32.0, noise=0.05, seed=2))
    assert same.includes_one
    assert same.ci[1] - same.ci[0] > 0.01  # the noise shows in the interval
    apart = cbs_ratio(group(256.0, noise=0.05, seed=1), group(8.0, noise=0.05, seed=2))
    assert apart.ci[0] > 1.0
