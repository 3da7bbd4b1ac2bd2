"""scaling cbs --from-losses: steps to a target read off a loss grid across D (iso-loss), B_opt beside the CBS."""

import json

import numpy as np
import pytest

from scaling.analysis.isoloss import crossing_tokens, iso_loss_cbs, vertex_batch
from scaling.analysis.lossgrid import grid_from_runs
from scaling.analysis.synthetic_losses import TrueSteps, iso_loss_runs, to_csv
from scaling.cli import main
from scaling.errors import ScalingError

B = 2.0 ** np.arange(4, 12)
D = np.geomspace(1e6, 1e9, 31)
LRS = [0.5, 1.0, 2.0]


def test_crossing_and_vertex():
    assert crossing_tokens([1, 10, 100], [3.0, 2.0, 1.0], 1.5) == (pytest.approx(np.sqrt(1000)), None)
    assert crossing_tokens([1, 10], [1.0, 0.5], 1.5)[0] is None
    assert "never reaches" in crossing_tokens([1, 10], [3.0, 2.0], 1.5)[1]
    x = np.array([16.0, 32, 64, 128, 256])
    b, edge = vertex_batch(x, np.exp((np.log(x) - np.log(50)) ** 2))
    assert b == pytest.approx(50) and not edge
    assert vertex_batch(x, x) == (16.0, True)


def test_recovers_the_step_model():
    truth = TrueSteps()
    res = iso_loss_cbs(grid_from_runs(iso_loss_runs(1e6, D, B, LRS, truth)), [truth.target], n_resamples=200)
    g, iso = res.cbs.groups[0], res.groups[0]
    assert g.b_noise == pytest.approx(truth.b_noise, rel=0.02) and g.s_min == pytest.approx(truth.s_min, rel=0.02)
    assert g.cbs == pytest.approx(1.2 * 16 + 0.2 * truth.b_noise, rel=0.02)
    assert g.tokens == pytest.approx(truth.tokens_to_target(16, 128), rel=0.02) and g.target_loss == truth.target
    assert iso.b_opt == 16 and iso.b_opt_at_edge and all(iso.used)
    assert iso.best_lr == (truth.lr,) * len(B)


def test_step_model_only_above_b_opt():
    """Tokens to target rise again below ~b_low: those batch sizes are left out of the fit."""
    truth = TrueSteps(b_low=64)
    res = iso_loss_cbs(grid_from_runs(iso_loss_runs(1e6, D, B, LRS, truth)), [truth.target], n_resamples=200)
    iso = res.groups[0]
    dense = np.geomspace(16, 2048, 20001)
    true_b_opt = dense[np.argmin(truth.tokens_to_target(dense, 128))]
    assert iso.b_opt == pytest.approx(true_b_opt, rel=0.15) and not iso.b_opt_at_edge
    assert all(u == (b >= iso.b_opt) for b, u in zip(iso.batch_sizes, iso.used))
    assert res.cbs.groups[0].batch_sizes[0] > iso.b_opt
    assert res.to_dict()["groups"][0]["b_opt"] == iso.b_opt


def test_cli_iso_loss(tmp_path, capsys):
    runs = iso_loss_runs(1e6, D[::3], B, LRS, TrueSteps(b_low=64)) + \
        iso_loss_runs(4e6, D[::3], B, LRS, TrueSteps(b_low=64, b_noise=512))
    path = tmp_path / "losses.csv"
    path.write_text(to_csv(runs))
    assert main(["cbs", "--from-losses", str(path), "--target-loss", "3", "--json", "--resamples", "100"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["groups"]) == 2 and all(g["b_opt"] < g["reference_batch"] for g in out["groups"])
    assert out["assumptions"] and {"tokens_to_target", "steps", "used"} <= set(out["steps_table"][0])
    assert main(["cbs", "--from-losses", str(path), "--target-loss", "3", "--resamples", "100"]) == 0
    text = capsys.readouterr().out
    assert "B_opt" in text and "assumes:" in text and "below B_opt" in text
    assert main(["fit", "--from-losses", str(path), "--target-loss", "3", "--target-loss", "2.9",
                 "--against", "params,tokens", "--resamples", "100"]) == 0
    assert "leave-one-out" in capsys.readouterr().out
    one_d = tmp_path / "one.csv"
    one_d.write_text(to_csv(iso_loss_runs(1e6, D[:1], B, LRS)))
    for argv, match in ((["cbs", "--from-losses", str(one_d), "--target-loss", "3"], "at least 2"),
                        (["cbs", "--from-losses", str(path)], "--target-loss"),
                        (["cbs", str(path), "--from-losses", str(path), "--target-loss", "3"], "not both"),
                        (["cbs"], "give a steps table")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and match in err and "Traceback" not in err, err


def test_unreachable_target_is_an_error():
    truth = TrueSteps()
    with pytest.raises(ScalingError, match="no \\(model size, target loss\\) gives a CBS"):
        iso_loss_cbs(grid_from_runs(iso_loss_runs(1e6, D, B, LRS, truth)), [1.0], n_resamples=20)
