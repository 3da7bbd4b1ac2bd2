"""scaling optimum: B_opt and lr_opt from loss grids (known bowls), intervals, edges, laws, predict, CLI."""

import json

import numpy as np
import pytest

from scaling.analysis import load_law, predict
from scaling.analysis.lossgrid import load_losses
from scaling.analysis.optimum import DEFAULT_BAND, optima
from scaling.analysis.optimumfit import fit_optimum_laws
from scaling.analysis.synthetic_losses import TrueBowl, synthetic_loss_grid, synthetic_loss_runs, to_csv
from scaling.cli import main
from scaling.errors import ScalingError

FACTORS = 2.0 ** np.arange(-3, 4)          # seven batch sizes and seven lrs around the optimum
BOWL = TrueBowl(b_a_params=0.1)
GROUPS = [(n, d) for n in (1e6, 4e6, 1.6e7) for d in (2e7, 8e7, 3.2e8)]


def write(tmp_path, runs, name="losses.csv"):
    path = tmp_path / name
    path.write_text(to_csv(runs))
    return path


def test_recovers_a_known_bowl():
    grid = synthetic_loss_grid(GROUPS[:3], FACTORS, FACTORS, BOWL, noise=1e-3, rng=np.random.default_rng(1))
    for g in optima(grid, n_resamples=300).groups:
        b, lr = BOWL.b_opt(g.params, g.tokens), BOWL.lr_opt(g.params, g.tokens)
        assert g.b_opt == pytest.approx(b, rel=0.05) and g.lr_opt == pytest.approx(lr, rel=0.05)
        assert g.b_opt_ci[0] < g.b_opt < g.b_opt_ci[1] and g.lr_opt_ci[0] < g.lr_opt < g.lr_opt_ci[1]
        assert g.b_opt_tokens == pytest.approx(128 * g.b_opt) and g.bootstrap == "runs" and not g.edge


def test_optimum_between_grid_points_is_not_the_argmin():
    """The truth sits half an octave off the grid: the estimate finds it, the argmin cannot."""
    bowl = TrueBowl(b_c=128 * 2 ** 0.5, lr_c=3e-3 * 2 ** 0.5)
    grid = synthetic_loss_grid([(1e6, 2e7)], FACTORS / 2 ** 0.5, FACTORS / 2 ** 0.5, bowl, noise=0.0)
    g = optima(grid, n_resamples=50).groups[0]
    assert g.b_opt == pytest.approx(bowl.b_opt(1e6, 2e7), rel=0.02)
    assert g.lr_opt == pytest.approx(bowl.lr_opt(1e6, 2e7), rel=0.02)
    assert abs(np.log(g.argmin_batch / g.b_opt)) > 0.2


def test_band_is_the_fitted_ellipse():
    """Without noise the bowl is exact: the band's extent along log B is sqrt(2 band L (H^-1)_BB)."""
    grid = synthetic_loss_grid([(1e6, 2e7)], FACTORS, FACTORS, BOWL, noise=0.0)
    g = optima(grid, n_resamples=20).groups[0]
    H = np.array([[2 * BOWL.k_b, BOWL.k_bl], [BOWL.k_bl, 2 * BOWL.k_lr]])
    half = np.sqrt(2 * DEFAULT_BAND * BOWL.floor(1e6, 2e7) * np.linalg.inv(H)[0, 0])
    assert g.band["batch_range"] == pytest.approx([128 * np.exp(-half), 128 * np.exp(half)], rel=1e-6)
    assert g.loss_opt == pytest.approx(BOWL.floor(1e6, 2e7), rel=1e-9)
    inside = g.band["batch_sizes_within"]
    assert 128 in inside and all(g.band["batch_range"][0] <= b <= g.band["batch_range"][1] for b in inside)


@pytest.mark.parametrize("seeds, noise, scheme", [(1, 2e-3, "runs"), (3, 2e-3, "seeds")])
def test_intervals_cover_the_truth(seeds, noise, scheme):
    """Over independent noisy grids the 95% intervals hold the true optimum about 95% of the time."""
    reps, hits_b, hits_lr = 60, 0, 0
    for i in range(reps):
        grid = synthetic_loss_grid([(1e6, 2e7)], FACTORS, FACTORS, BOWL, noise=noise, seeds=seeds,
                                   rng=np.random.default_rng(1000 + i))
        g = optima(grid, n_resamples=200, seed=i).groups[0]
        assert g.bootstrap == scheme
        hits_b += g.b_opt_ci[0] <= 128 <= g.b_opt_ci[1]
        hits_lr += g.lr_opt_ci[0] <= 3e-3 <= g.lr_opt_ci[1]
    assert hits_b / reps >= 0.85 and hits_lr / reps >= 0.85


def test_optimum_outside_the_grid_stops_or_is_flagged():
    grid = synthetic_loss_grid([(1e6, 2e7), (1e6, 8e7)], FACTORS * 16, FACTORS, BOWL, noise=1e-3)
    with pytest.raises(ScalingError, match="outside the batch sizes tried"):
        optima(grid, n_resamples=50)
    kept = optima(grid, n_resamples=50, keep_edge=True)
    assert all("b_opt_outside_grid" in g.flags and g.edge and not g.usable for g in kept.groups)
    with pytest.raises(ScalingError, match="groups with an optimum"):
        fit_optimum_laws(kept, "tokens")


def test_diverged_runs_count_as_tried(tmp_path):
    """A diverged lr above the grid makes the largest finished lr an interior one: no edge flag."""
    runs = synthetic_loss_runs([(1e6, 2e7)], FACTORS, FACTORS[:-2], BOWL, noise=0.0)
    path = write(tmp_path, runs)
    g = optima(load_losses(path), n_resamples=20).groups[0]
    assert "argmin_at_edge" not in g.flags
    lines = path.read_text().splitlines()
    text = "\n".join([lines[0] + ",status"] + [line + ",done" for line in lines[1:]]) + "\n"
    path.write_text(text + "".join(f"1000000,20000000,{b:g},0.3,nan,128,,diverged\n"
                                   for b in sorted({r.batch_size for r in runs})))
    grid = load_losses(path)
    assert grid.groups[0].tried_lrs[-1] == 0.3 and "7 diverged" in grid.warnings[0]


def test_laws_recover_exponents_and_reload(tmp_path):
    grid = synthetic_loss_grid(GROUPS, FACTORS, FACTORS, BOWL, noise=1e-3, rng=np.random.default_rng(2))
    fit = fit_optimum_laws(optima(grid, n_resamples=300), "params,tokens")
    b, lr = fit.laws["b_opt"], fit.laws["lr_opt"]
    for law, truth in ((b, {"params": 0.1, "tokens": 0.5}), (lr, {"params": -0.5, "tokens": 0.2})):
        iv = law.intervals()
        for v, a in truth.items():
            assert iv[f"a_{v}"][0] < a < iv[f"a_{v}"][1] and law.exponents[v] == pytest.approx(a, abs=0.03)
    assert fit.meta["leave_one_out"]["done"] and {h["quantity"] for h in fit.meta["leave_one_out"]["held_out"]} \
        == {"b_opt", "lr_opt"}
    fit.save(tmp_path / "fit.json")
    again = load_law(tmp_path / "fit.json")
    p = predict(again, params=1e9, tokens=1e11)
    assert p == predict(fit, params=1e9, tokens=1e11)
    assert p["b_opt"] == pytest.approx(BOWL.b_opt(1e9, 1e11), rel=0.15)
    assert p["lr_opt"] == pytest.approx(BOWL.lr_opt(1e9, 1e11), rel=0.15)
    assert p["b_opt_ci"][0] < p["b_opt"] < p["b_opt_ci"][1] and p["extrapolation"]["extrapolates"]
    assert "cbs" not in p and p["b_opt_tokens"] == pytest.approx(128 * p["b_opt"])


def test_cli_json_shape_and_predict(tmp_path, capsys):
    path = write(tmp_path, synthetic_loss_runs(GROUPS, FACTORS, FACTORS, BOWL, noise=1e-3))
    fit = tmp_path / "fits" / "opt.json"
    assert main(["optimum", str(path), "--against", "params,tokens", "-o", str(fit), "--json",
                 "--resamples", "200"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("params", "tokens", "b_opt", "b_opt_ci", "b_opt_tokens", "lr_opt", "lr_opt_ci", "edge", "band"):
        assert key in out["groups"][0]
    assert set(out["laws"]) == {"b_opt", "lr_opt"}
    assert {"parameters", "intervals"} <= set(out["laws"]["b_opt"])
    assert "a_tokens" in out["laws"]["lr_opt"]["parameters"]
    assert json.loads(fit.read_text())["kind"] == "optimum"
    assert main(["predict", str(fit), "--params", "1e8", "--tokens", "1e10", "--json"]) == 0
    p = json.loads(capsys.readouterr().out)
    assert {"b_opt", "b_opt_ci", "lr_opt", "lr_opt_ci", "extrapolation"} <= set(p)
    assert main(["predict", str(fit), "--params", "1e8", "--tokens", "1e10"]) == 0
    text = capsys.readouterr().out
    assert "B_opt" in text and "lr_opt" in text and "CBS:" not in text
    assert main(["optimum", str(path), "--resamples", "100"]) == 0
    assert "b_opt" in capsys.readouterr().out


def _one_line_exit_2(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and match in err, err


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    good = synthetic_loss_runs([(1e6, 2e7)], FACTORS, FACTORS, BOWL, noise=1e-3)
    one_batch = write(tmp_path, [r for r in good if r.batch_size == 128], "one.csv")
    _one_line_exit_2(capsys, ["optimum", str(one_batch)], "1 batch size(s)")
    nan = tmp_path / "nan.csv"
    nan.write_text(to_csv(good).replace(f"{good[3].loss:.6f}", "nan", 1))
    _one_line_exit_2(capsys, ["optimum", str(nan)], "loss is nan but status is not 'diverged'")
    edge = write(tmp_path, synthetic_loss_runs([(1e6, 2e7)], FACTORS * 16, FACTORS, BOWL, noise=1e-3), "edge.csv")
    _one_line_exit_2(capsys, ["optimum", str(edge)], "outside the batch sizes tried")
    assert main(["optimum", str(edge), "--keep-edge", "--resamples", "50"]) == 0
    assert "b_opt_outside_grid" in capsys.readouterr().out
    cols = tmp_path / "cols.csv"
    cols.write_text("params,tokens,batch_size,loss\n1,2,3,4\n")
    _one_line_exit_2(capsys, ["optimum", str(cols)], "lacks required column(s) lr")
    _one_line_exit_2(capsys, ["optimum", str(tmp_path / "missing.csv")], "not found")
    _one_line_exit_2(capsys, ["optimum", str(write(tmp_path, good)), "-o", str(tmp_path / "f.json")], "--against")
    _one_line_exit_2(capsys, ["optimum", str(write(tmp_path, good)), "--band", "0"], "band")
    negative = tmp_path / "neg.csv"
    negative.write_text(to_csv(good).replace("1000000,", "-1,", 1))
    _one_line_exit_2(capsys, ["optimum", str(negative)], "must be positive")


def test_the_documented_example_runs(tmp_path, capsys):
    """examples/loss_grid.py and the commands in its docstring (README, "Optimal batch size ...")."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parent.parent / "examples" / "loss_grid.py"
    subprocess.run([sys.executable, str(script), "--out-dir", str(tmp_path)], check=True, capture_output=True)
    fit = tmp_path / "fit.json"
    assert main(["optimum", str(tmp_path / "loss_grid.csv"), "--against", "params,tokens", "-o", str(fit),
                 "--resamples", "200"]) == 0
    assert main(["predict", str(fit), "--params", "1e9", "--tokens", "2e10"]) == 0
    assert main(["plan", str(fit), "--params", "1e9", "--tokens", "2e10", "--chip-flops", "989e12", "--mfu", "0.4",
                 "--chips-max", "256", "--per-chip-batch", "8"]) == 0
    assert main(["cbs", "--from-losses", str(tmp_path / "loss_grid_iso.csv"), "--target-loss", "3.0",
                 "--resamples", "200"]) == 0
    assert "B_opt" in capsys.readouterr().out
