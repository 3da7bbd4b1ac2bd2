"""Power laws, fit files, predictions and presets, through the API and the CLI."""

import json

import numpy as np
import pytest

from scaling.analysis import critical_batch_sizes, fit_law, load_law, predict, predict_preset
from scaling.analysis.synthetic import TrueLaws, synthetic_table
from scaling.cli import main
from scaling.errors import ScalingError

B = 2.0 ** np.arange(4, 13)
GRID = [(1e6, 2e7), (1e6, 8e7), (4e6, 8e7), (4e6, 3.2e8), (1.6e7, 3.2e8), (1.6e7, 1.28e9)]
LAWS = TrueLaws(bn_c=300, bn_a_params=0.1, bn_a_tokens=0.45, sm_c=400, sm_a_params=-0.1, sm_a_tokens=0.35)


@pytest.fixture(scope="module")
def joint():
    table = synthetic_table(GRID, B, LAWS, noise=0.02, rng=np.random.default_rng(4))
    result = critical_batch_sizes(table, n_resamples=300)
    return result, fit_law(result, "params,tokens")


def test_joint_law_recovers_exponents(joint):
    _, fit = joint
    bn = fit.laws["b_noise"]
    assert bn.exponents["params"] == pytest.approx(0.1, abs=0.05)
    assert bn.exponents["tokens"] == pytest.approx(0.45, abs=0.05)
    iv = bn.intervals()
    assert iv["a_tokens"][0] < 0.45 < iv["a_tokens"][1]
    assert fit.laws["s_min"].exponents["params"] == pytest.approx(-0.1, abs=0.05)


def test_fit_file_reloads_exactly(joint, tmp_path):
    _, fit = joint
    fit.save(tmp_path / "fit.json")
    again = load_law(tmp_path / "fit.json")
    a = predict(fit, params=1e10, tokens=1e12, batch=4096)
    b = predict(again, params=1e10, tokens=1e12, batch=4096)
    assert a == b
    d = json.loads((tmp_path / "fit.json").read_text())
    assert d["input"]["sha256"] and d["cbs_definition"].startswith("Zhang") and len(d["groups"]) == len(GRID)
    assert d["units"]["cbs"] == "sequences"


def test_leave_one_out_is_stored(joint):
    _, fit = joint
    logo = fit.meta["leave_one_out"]
    assert logo["done"] and logo["held_out"][0]["params"] == 1.6e7 and logo["held_out"][0]["tokens"] == 1.28e9
    assert abs(logo["held_out"][0]["relative_error"]) < 0.3


def test_prediction_reports_extrapolation(joint):
    _, fit = joint
    out = predict(fit, params=1.6e10, tokens=1.28e12, batch=2048)
    ex = out["extrapolation"]
    assert ex["extrapolates"] and ex["variables"]["params"]["factor"] == pytest.approx(1000)
    assert out["cbs_ci"][0] < out["cbs"] < out["cbs_ci"][1] and out["cbs_tokens"] == pytest.approx(out["cbs"] * 128)
    inside = predict(fit, params=4e6, tokens=1.6e8)
    assert not inside["extrapolation"]["extrapolates"]
    b = out["batch"]
    s, n = out["s_min"], out["b_noise"]
    assert b["steps"] == pytest.approx(s * (1 + n / 2048))
    assert b["overhead_over_linear"] == pytest.approx((2048 + n) / (16 + n) - 1)


def test_collinear_joint_fit_refused():
    table = synthetic_table([(1e6 * 2 ** k, 2e7 * 2 ** k) for k in range(4)], B, noise=0.02)
    result = critical_batch_sizes(table, n_resamples=20)
    with pytest.raises(ScalingError, match="collinear"):
        fit_law(result, "params,tokens")
    assert fit_law(result, "params").cbs.exponents["params"] > 0


def test_too_few_groups_refused():
    result = critical_batch_sizes(synthetic_table(GRID[:2], B, noise=0.02), n_resamples=20)
    with pytest.raises(ScalingError, match="at least 3"):
        fit_law(result, "params,tokens")


def test_units_do_not_change_the_law():
    t1 = synthetic_table(GRID, B, LAWS, noise=0.03, rng=np.random.default_rng(9))
    t2 = t1.__class__(groups=tuple(g.__class__(**{**g.__dict__, "params": g.params / 1e6}) for g in t1.groups))
    f1 = fit_law(critical_batch_sizes(t1, n_resamples=100), "params,tokens")
    f2 = fit_law(critical_batch_sizes(t2, n_resamples=100), "params,tokens")
    assert f1.cbs.exponents == pytest.approx(f2.cbs.exponents, rel=1e-9)
    p1, p2 = predict(f1, params=1e9, tokens=1e11), predict(f2, params=1e3, tokens=1e11)
    assert p1["cbs"] == pytest.approx(p2["cbs"], rel=1e-9) and p1["cbs_ci"] == pytest.approx(p2["cbs_ci"], rel=1e-9)


def test_law_interval_coverage():
    """Nominal 95% intervals of the fitted exponent cover the truth in roughly 95% of draws."""
    laws = TrueLaws(bn_a_tokens=0.5)
    grid = [(1e6, 2e7 * 4 ** k) for k in range(5)]
    rng = np.random.default_rng(21)
    draws, hits, widths, ests = 60, 0, [], []
    for i in range(draws):
        result = critical_batch_sizes(synthetic_table(grid, B, laws, noise=0.05, rng=rng), n_resamples=150, seed=i)
        law = fit_law(result, "tokens", seed=i).laws["b_noise"]
        lo, hi = law.intervals()["a_tokens"]
        hits += lo <= 0.5 <= hi
        widths.append(hi - lo)
        ests.append(law.exponents["tokens"])
    assert hits / draws >= 0.85
    assert np.median(widths) < 6 * np.std(ests)


def test_presets():
    z = predict_preset("zhang2024-chinchilla", params=1e9)
    assert z["cbs"] == pytest.approx(93.20 * 1000 ** 0.47) and z["cbs_tokens"] == pytest.approx(512 * z["cbs"])
    k = predict_preset("kaplan2020", loss=3.0, seq_len=1024)
    assert k["cbs_tokens"] == pytest.approx(2.1e8 / 3.0 ** (1 / 0.21)) and k["cbs"] == pytest.approx(k["cbs_tokens"] / 1024)
    d = predict_preset("deepseek2024", params=1e9, tokens=2e10)
    assert d["b_opt_tokens"] == pytest.approx(0.2920 * (6 * 1e9 * 2e10) ** 0.3271) and "cbs" not in d
    assert predict_preset("zhang2024-chinchilla", params=1e12)["extrapolation"]["variables"]["params"]["factor"] \
        == pytest.approx(1e12 / 1.2e9)
    with pytest.raises(ScalingError, match="--loss"):
        predict_preset("kaplan2020", params=1e9)
    with pytest.raises(ScalingError, match="unknown law"):
        predict_preset("nope")


def test_cli_cbs_fit_predict_json(tmp_path, capsys):
    from pathlib import Path

    csv = Path(__file__).parent.parent / "examples" / "steps_example.csv"
    assert main(["cbs", str(csv), "--json", "--resamples", "200"]) == 0
    out = json.loads(capsys.readouterr().out)
    g = out["groups"][0]
    for key in ("params", "tokens", "cbs", "cbs_ci", "cbs_tokens", "s_min", "b_noise", "reference_batch", "overhead"):
        assert key in g
    fit = tmp_path / "fits" / "fit.json"
    assert main(["fit", str(csv), "--against", "params,tokens", "-o", str(fit), "--json", "--resamples", "200"]) == 0
    json.loads(capsys.readouterr().out)
    assert main(["predict", str(fit), "--params", "1.6e10", "--tokens", "1.28e12", "--batch", "4096", "--json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert {"cbs", "cbs_ci", "cbs_tokens", "extrapolation"} <= set(p) and p["extrapolation"]["extrapolates"]
    assert main(["predict", str(fit), "--params", "1.6e10"]) == 2  # law needs --tokens too
    assert "--tokens" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "missing.json"), "--params", "1"]) == 2
    assert main(["predict", "--law", "zhang2024-chinchilla", "--params", "1e9", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cbs"] > 0
    assert main(["cbs", str(csv)]) == 0
    assert "cbs" in capsys.readouterr().out


def test_cli_where_selects_one_family(tmp_path, capsys):
    """--where restricts cbs/fit to matching groups: a data-size law at one model size."""
    from pathlib import Path

    csv = Path(__file__).parent.parent / "examples" / "steps_example.csv"
    fit = tmp_path / "fit_tokens.json"
    assert main(["fit", str(csv), "--against", "tokens", "--where", "params=4e6", "-o", str(fit),
                 "--json", "--resamples", "100"]) == 0
    capsys.readouterr()
    groups = json.loads(fit.read_text())["groups"]
    assert {g["params"] for g in groups} == {4e6} and len(groups) == 2
    assert main(["cbs", str(csv), "--where", "tokens_per_param=20", "--json", "--resamples", "100"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [g["tokens"] / g["params"] for g in out["groups"]] == [20, 20, 20]
    assert main(["cbs", str(csv), "--where", "params=5e7"]) == 2
    assert "no group matches" in capsys.readouterr().err
    assert main(["cbs", str(csv), "--where", "width=3"]) == 2


def test_cli_where_model_analyses_one_configuration_of_a_shared_shape(tmp_path, capsys):
    """Two configurations of one (params, tokens) -- say two schedules -- form one group unless
    --where model=NAME keeps one's rows: its CBS is then the CBS of a table of its rows alone."""
    import csv as csvlib

    def write(path, models):
        with open(path, "w", newline="") as f:
            w = csvlib.writer(f)
            w.writerow(["params", "tokens", "batch_size", "steps", "lr", "model"])
            for name, b_noise in models:
                for b in (1, 2, 4, 8, 16, 32, 64, 128, 256):
                    w.writerow([1000, 100000, b, 1000 * (1 + b_noise / b), 0.01, name])

    both, alone = tmp_path / "both.csv", tmp_path / "alone.csv"
    write(both, [("fast", 16.0), ("slow", 64.0)])
    write(alone, [("slow", 64.0)])
    cbs = {}
    for key, args in (("where", [str(both), "--where", "model=slow"]), ("alone", [str(alone)])):
        assert main(["cbs", *args, "--json", "--resamples", "50"]) == 0
        (g,) = json.loads(capsys.readouterr().out)["groups"]
        cbs[key] = g["cbs"]
    assert cbs["where"] == pytest.approx(cbs["alone"], rel=1e-9)
    # B* = 1.2 B_ref + 0.2 B_noise for an exact hyperbola (scaling.analysis.definitions.cbs_hyperbola)
    assert cbs["alone"] == pytest.approx(1.2 + 0.2 * 64, rel=1e-3)
    assert main(["cbs", str(both)]) == 2  # mixing them would be a minimum over two configurations
    assert "holds the rows of 2 models (fast, slow); analyse one at a time with --where model=NAME" \
        in capsys.readouterr().err
    assert main(["cbs", str(both), "--where", "model=cosine"]) == 2
    assert capsys.readouterr().err.strip().endswith("no row has model=cosine (models: fast, slow)")
