"""Offset power laws y = y0 + c x^a: recovery, the global minimum, intervals, fit files, the CLI."""

import json
from pathlib import Path

import numpy as np
import pytest

from scaling.analysis import critical_batch_sizes, fit_law, load_law, predict
from scaling.analysis.laws import _offset_model, fit_offset_law, fit_power_law
from scaling.analysis.synthetic import TrueLaws, synthetic_table
from scaling.cli import main
from scaling.errors import ScalingError

X = np.geomspace(1e6, 1e9, 7)[:, None]
EXAMPLE = Path(__file__).parent.parent / "examples" / "steps_example.csv"


def offset_data(y0=20.0, c=5.0, a=0.5, noise=0.02, seed=0, resamples=400):
    rng = np.random.default_rng(seed)
    true = y0 + c * (X[:, 0] / np.exp(np.log(X[:, 0]).mean())) ** a
    y = true * np.exp(noise * rng.standard_normal(len(true)))
    draws = y[None] * np.exp(noise * rng.standard_normal((resamples, len(true))))
    return y, draws


def test_recovers_floor_coefficient_and_exponent():
    y, draws = offset_data(noise=0.0)
    law = fit_offset_law("cbs", ("params",), X, y, draws)
    assert law.y0 == pytest.approx(20.0, rel=1e-6) and law.c == pytest.approx(5.0, rel=1e-6)
    assert law.exponents["params"] == pytest.approx(0.5, rel=1e-6)
    assert law.value({"params": 1e12}) == pytest.approx(20 + 5 * (1e12 / np.exp(np.log(X[:, 0]).mean())) ** 0.5)


def test_solution_is_the_global_minimum():
    """No floor on a dense scan, each with its own best (log c, a), fits the data better."""
    from scipy.optimize import least_squares

    y, draws = offset_data(noise=0.03, seed=3)
    law = fit_offset_law("cbs", ("params",), X, y, draws)
    z = np.log(X) - np.log(law.pivot["params"])

    def rss(theta):
        return float(np.sum((np.log(y) - _offset_model(np.asarray(theta)[None], z)[0][0]) ** 2))

    ours = rss([law.y0, law.log_c, law.exponents["params"]])
    for y0 in np.linspace(0, 0.99 * y.min(), 60):
        sol = least_squares(lambda t: _offset_model(np.array([[y0, *t]]), z)[0][0] - np.log(y), [0.0, 0.3])
        assert ours <= float(np.sum(sol.fun ** 2)) + 1e-10


def test_no_floor_gives_the_power_law():
    y, draws = offset_data(y0=0.0, noise=0.01, seed=5)
    off = fit_offset_law("cbs", ("params",), X, y, draws)
    power = fit_power_law("cbs", ("params",), X, y, draws)
    assert off.y0 == pytest.approx(0.0, abs=0.5) and off.intervals()["y0"][0] == pytest.approx(0.0, abs=1e-9)
    assert off.exponents["params"] == pytest.approx(power.exponents["params"], abs=0.03)


def test_intervals_cover_the_exponent():
    hits = 0
    for seed in range(30):
        y, draws = offset_data(noise=0.02, seed=100 + seed, resamples=300)
        lo, hi = fit_offset_law("cbs", ("params",), X, y, draws).intervals()["a_params"]
        hits += lo <= 0.5 <= hi
    assert hits >= 25


def test_too_few_groups_and_huber_are_refused():
    y, draws = offset_data()
    with pytest.raises(ScalingError, match="needs at least 4 groups"):
        fit_offset_law("cbs", ("params",), X[:3], y[:3], draws[:, :3])
    with pytest.raises(ScalingError, match="least squares only"):
        fit_offset_law("cbs", ("params",), X, y, draws, method="huber")


def test_fit_file_holds_the_form_and_reloads(tmp_path):
    table = synthetic_table([(1e6, 2e7 * 4 ** k) for k in range(5)], 2.0 ** np.arange(4, 13),
                            TrueLaws(), noise=0.03, rng=np.random.default_rng(0))
    fit = fit_law(critical_batch_sizes(table, n_resamples=200), "tokens", form="offset")
    fit.save(tmp_path / "off.json")
    d = json.loads((tmp_path / "off.json").read_text())
    assert d["form"] == "offset" and d["laws"]["cbs"]["form"] == "offset"
    assert set(d["laws"]["cbs"]["parameters"]) == {"y0", "c", "a_tokens"}
    again = load_law(tmp_path / "off.json")
    assert predict(again, tokens=1e11, batch=4096) == predict(fit, tokens=1e11, batch=4096)
    assert fit.meta["leave_one_out"]["done"]


def test_cli_fit_form_offset(tmp_path, capsys):
    out = tmp_path / "off.json"
    assert main(["fit", str(EXAMPLE), "--against", "params,tokens", "--form", "offset", "-o", str(out),
                 "--resamples", "200"]) == 0
    text = capsys.readouterr().out
    assert "y0 + c * prod" in text and "y0 interval" in text
    assert main(["predict", str(out), "--params", "1e9", "--tokens", "1e11", "--json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert p["cbs_ci"][0] < p["cbs"] < p["cbs_ci"][1]
    assert main(["fit", str(EXAMPLE), "--against", "tokens", "--where", "params=4e6", "--form", "offset"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs at least 4 groups" in err
