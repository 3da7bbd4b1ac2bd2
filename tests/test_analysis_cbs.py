"""Step-model fits and the per-group CBS: recovery, closed form, invariance, interval coverage."""

import numpy as np
import pytest

from scaling.analysis import critical_batch_sizes, group_cbs
from scaling.analysis import stepmodel
from scaling.analysis.definitions import cbs_hyperbola, cbs_numeric
from scaling.analysis.steps_table import StepsTable, group_rows
from scaling.analysis.synthetic import TrueLaws, synthetic_rows, synthetic_table

B = 2.0 ** np.arange(4, 13)


def test_noise_free_hyperbola_recovered_exactly():
    y = np.log(400 * (1 + 300 / B))
    fit = stepmodel.fit_many(B, y[None])
    assert np.exp(fit.log_b_noise[0]) == pytest.approx(300, rel=1e-7)
    assert np.exp(fit.log_s_min[0]) == pytest.approx(400, rel=1e-7)


def test_result_does_not_depend_on_the_grid(monkeypatch):
    rng = np.random.default_rng(0)
    Y = np.log(400 * (1 + 300 / B))[None] + 0.05 * rng.standard_normal((50, len(B)))
    a = stepmodel.fit_many(B, Y)
    monkeypatch.setattr(stepmodel, "U_GRID_POINTS", 23)
    b = stepmodel.fit_many(B, Y)
    np.testing.assert_allclose(a.log_b_noise, b.log_b_noise, atol=1e-7)


def test_vectorised_fit_matches_scipy_polish():
    rng = np.random.default_rng(1)
    y = np.log(400 * (1 + 300 / B)) + 0.05 * rng.standard_normal(len(B))
    for model in ("hyperbola", "free"):
        f = stepmodel.fit_many(B, y[None], model)
        p = stepmodel.polish(B, y, f, model)
        assert p.rss[0] == pytest.approx(f.rss[0], rel=1e-6)
        assert p.log_b_noise[0] == pytest.approx(f.log_b_noise[0], abs=1e-4)


def test_free_exponent_recovered():
    y = np.log(400 * (1 + (300 / B) ** 0.7))
    f = stepmodel.fit_many(B, y[None], "free")
    assert f.alpha[0] == pytest.approx(0.7, rel=1e-5)
    assert np.exp(f.log_b_noise[0]) == pytest.approx(300, rel=1e-4)


def test_huber_resists_an_outlier():
    y = np.log(400 * (1 + 300 / B))
    y[3] += 0.8
    ls = stepmodel.polish(B, y, stepmodel.fit_many(B, y[None]), "hyperbola")
    f = stepmodel.fit_many(B, y[None], "huber")
    hub = stepmodel.polish(B, y, f, "huber")
    assert abs(np.exp(hub.log_b_noise[0]) - 300) < 0.2 * abs(np.exp(ls.log_b_noise[0]) - 300)


@pytest.mark.parametrize("alpha", [1.0])
def test_closed_form_equals_numeric(alpha):
    bn = np.geomspace(1, 1e5, 40)
    for ref in (16.0, 256.0):
        for eps in (0.05, 0.2, 1.0):
            np.testing.assert_allclose(cbs_numeric(bn, alpha, ref, eps), cbs_hyperbola(bn, ref, eps), rtol=1e-10)


def test_numeric_cbs_satisfies_definition_at_the_boundary():
    bn, a, ref, eps = 500.0, 0.6, 32.0, 0.2
    b = float(cbs_numeric(bn, a, ref, eps))
    s = lambda x: 1 + (bn / x) ** a  # noqa: E731
    assert b * s(b) == pytest.approx((1 + eps) * ref * s(ref), rel=1e-10)
    assert (b * 1.01) * s(b * 1.01) > (1 + eps) * ref * s(ref)


def _rows(scale_params=1.0, scale_steps=1.0, seed=3):
    rows = synthetic_rows([(1e6, 2e7), (4e6, 8e7), (1.6e7, 3.2e8)], B, noise=0.04,
                          rng=np.random.default_rng(seed))
    return [r.__class__(**{**r.__dict__, "params": r.params * scale_params, "steps": r.steps * scale_steps})
            for r in rows]


def test_units_do_not_change_results():
    base = critical_batch_sizes(StepsTable(groups=tuple(group_rows(_rows())[0])), n_resamples=100)
    other = critical_batch_sizes(StepsTable(groups=tuple(group_rows(_rows(1e-6, 7.0))[0])), n_resamples=100)
    for a, b in zip(base.groups, other.groups):
        assert a.params == pytest.approx(b.params * 1e6)
        assert a.cbs == pytest.approx(b.cbs, rel=1e-8) and a.b_noise == pytest.approx(b.b_noise, rel=1e-6)
        np.testing.assert_allclose(a.cbs_ci, b.cbs_ci, rtol=1e-6)
        assert b.s_min == pytest.approx(7 * a.s_min, rel=1e-8)


def test_regime_flags():
    laws_far = TrueLaws(bn_c=1e6)  # B_noise far above every batch: still in perfect scaling
    g = synthetic_table([(1e6, 2e7)], B, laws_far, noise=0.0).groups[0]
    r = group_cbs(g, n_resamples=20)
    assert "no_diminishing_returns" in r.flags and any("diminishing-returns" in w or "1/B" in w for w in r.warnings)
    laws_near = TrueLaws(bn_c=2.0)  # B_noise below every batch: already in diminishing returns
    r = group_cbs(synthetic_table([(1e6, 2e7)], B, laws_near, noise=0.01).groups[0], n_resamples=20)
    assert "no_linear_scaling" in r.flags


def test_empirical_estimate_agrees_with_fit_on_clean_data():
    g = synthetic_table([(1e6, 2e7)], 2.0 ** np.arange(4, 13, 0.25), noise=0.0).groups[0]
    r = group_cbs(g, n_resamples=20)
    assert r.cbs_empirical == pytest.approx(r.cbs, rel=0.02)
    assert r.cbs == pytest.approx(1.2 * 16 + 0.2 * 300, rel=1e-6)


@pytest.mark.parametrize("seeds", [1, 3])
def test_interval_coverage_close_to_nominal(seeds):
    """Nominal 95% intervals cover the true CBS in roughly 95% of repeated draws."""
    laws, draws = TrueLaws(), 120
    truth = 1.2 * 16 + 0.2 * laws.b_noise(1e6, 2e7)
    rng = np.random.default_rng(11 + seeds)
    hits, widths, ests = 0, [], []
    for _ in range(draws):
        g = group_rows(synthetic_rows([(1e6, 2e7)], B, laws, noise=0.06, seeds=seeds, rng=rng))[0][0]
        r = group_cbs(g, n_resamples=200, rng=rng)
        hits += r.cbs_ci[0] <= truth <= r.cbs_ci[1]
        widths.append(np.log(r.cbs_ci[1] / r.cbs_ci[0]))
        ests.append(np.log(r.cbs))
    assert 0.87 <= hits / draws
    assert np.median(widths) < 6 * np.std(ests)  # not trivially wide (95% normal: ~3.9 sd)
