"""scaling plan: the planner's arithmetic by hand, laws without a step model, marks, the CLI, bad input."""

import json
from pathlib import Path

import pytest

from scaling.analysis.planner import Hardware, PlanLaw, batch_range, plan
from scaling.cli import main
from scaling.errors import ScalingError

EXAMPLE = Path(__file__).parent.parent / "examples" / "steps_example.csv"
LAW = PlanLaw(name="hand", seq_len=100, s_min=1000, b_noise=100, reference_batch=10)
HW = Hardware(chip_flops=1e12, mfu=0.5, chips_max=4, per_chip_batch=8, link_bandwidth=1e9, price=2.0)


def test_arithmetic_by_hand():
    """N = 1e6, T = 100, F M = 5e11 FLOP/s, at most 4 chips of 8 sequences, 1 GB/s links, fp32 gradients.

    B = 8:  1 chip;  S = 1000 (1 + 100/8) = 13500; step 6e6 * 8 * 100 / 5e11 = 0.0096 s, no all-reduce.
    B = 32: 4 chips; S = 4125; compute 1.92e10 / 2e12 = 0.0096 s; all-reduce 2 * 3/4 * 4e6 B / 1e9 = 0.006 s.
    B = 64: 4 chips, 2 micro-steps; S = 2562.5; compute 0.0192 s + 0.006 s.
    """
    pl = plan(LAW, 1e6, 1e9, HW, batch_sizes=[8, 32, 64])
    r8, r32, r64 = pl.rows
    assert (r8.chips, r8.accumulation, r32.chips, r32.accumulation, r64.chips, r64.accumulation) == (1, 1, 4, 1, 4, 2)
    assert r8.steps == pytest.approx(13500) and r32.steps == pytest.approx(4125) and r64.steps == pytest.approx(2562.5)
    assert r8.step_s == pytest.approx(0.0096) and r8.allreduce_s == 0
    assert r32.compute_s == pytest.approx(0.0096) and r32.allreduce_s == pytest.approx(0.006)
    assert r64.step_s == pytest.approx(0.0252)
    assert r8.wall_s == pytest.approx(129.6) and r32.wall_s == pytest.approx(64.35)
    assert r64.wall_s == pytest.approx(64.575)
    assert r8.accelerator_hours == pytest.approx(0.036) and r32.accelerator_hours == pytest.approx(0.0715)
    assert r32.cost == pytest.approx(0.143) and r32.tokens == pytest.approx(32 * 100 * 4125)
    assert r8.overhead == pytest.approx(108 / 110 - 1) and r32.overhead == pytest.approx(0.2)
    assert r64.overhead == pytest.approx(164 / 110 - 1)
    assert (pl.fastest, pl.cheapest, pl.fastest_within) == (32, 8, 8)
    assert pl.front == (8, 32) and "fastest" in r32.marks and "cheapest" in r8.marks
    assert plan(LAW, 1e6, 1e9, HW, batch_sizes=[8, 32, 64], within=1.0).fastest_within == 32
    assert pl.step_model and not pl.cannot_plan


def test_cbs_and_b_opt_rows_are_added_and_marked():
    law = PlanLaw(name="hand", seq_len=100, s_min=1000, b_noise=100, reference_batch=10, cbs=32.0)
    pl = plan(law, 1e6, 1e9, HW)
    sizes = [r.batch_size for r in pl.rows]
    assert sizes == sorted(sizes) and 32.0 in sizes and sizes[0] == 1 and sizes[-1] == 2 ** 10
    at_cbs = next(r for r in pl.rows if r.batch_size == 32.0)
    assert "cbs" in at_cbs.marks and at_cbs.overhead == pytest.approx(0.2)   # 32 = 1.2 B_ref + 0.2 B_noise
    assert batch_range(100) == [2.0 ** k for k in range(1, 13)]


def test_a_law_without_step_model_trains_the_data_budget():
    law = PlanLaw(name="cbs-only", seq_len=100, cbs=40.0)
    pl = plan(law, 1e6, 1e9, Hardware(chip_flops=1e12, mfu=0.5), batch_sizes=[16, 64])
    r16, r40, r64 = pl.rows
    assert r16.steps == pytest.approx(1e9 / (16 * 100)) and r16.overhead is None
    assert r16.tokens == pytest.approx(1e9) and r64.tokens == pytest.approx(1e9)
    assert "beyond_cbs" in r64.marks and "beyond_cbs" not in r40.marks and "cbs" in r40.marks
    assert not pl.step_model and any("no step model" in c for c in pl.cannot_plan)
    assert pl.fastest == 40 and 64 not in pl.front     # past the CBS: shown, never chosen


@pytest.mark.parametrize("hw, match", [
    (dict(chips_max=0), "chips-max"), (dict(mfu=1.5), "mfu"), (dict(chip_flops=0), "chip-flops"),
    (dict(per_chip_batch=0.5), "per-chip-batch"), (dict(price=-1), "price"),
    (dict(link_bandwidth=0), "link-bandwidth")])
def test_bad_hardware_is_refused(hw, match):
    with pytest.raises(ScalingError, match=match):
        plan(LAW, 1e6, 1e9, Hardware(**{"chip_flops": 1e12, "mfu": 0.5, **hw}))


def test_cli_plan_from_a_fit_file(tmp_path, capsys):
    fit = tmp_path / "fit.json"
    assert main(["fit", str(EXAMPLE), "--against", "params,tokens", "-o", str(fit), "--resamples", "200"]) == 0
    capsys.readouterr()
    png = tmp_path / "plan.png"
    argv = ["plan", str(fit), "--params", "1.6e10", "--tokens", "1.28e12", "--chip-flops", "989e12", "--mfu", "0.4",
            "--chips-max", "1024", "--per-chip-batch", "8", "--link-bandwidth", "5e10", "--price", "2.5"]
    assert main(argv + ["--json", "-o", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    keys = {"batch_size", "steps", "tokens", "chips", "accumulation", "step_s", "wall_s", "accelerator_hours", "cost",
            "overhead"}
    assert keys <= set(out["rows"][0]) and {"cbs", "b_opt", "fastest", "cheapest", "fastest_within"} <= set(out)
    cbs_row = next(r for r in out["rows"] if "cbs" in r["marks"])
    assert cbs_row["batch_size"] == pytest.approx(out["cbs"]) and 0 < cbs_row["overhead"] < 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "fastest:" in text and "cheapest" in text and "assumes:" in text


def test_cli_plan_from_presets_and_bad_input(capsys):
    base = ["--params", "1e9", "--tokens", "2e10", "--chip-flops", "989e12", "--mfu", "0.4"]
    assert main(["plan", "--law", "zhang2024-chinchilla", *base, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cbs"] == pytest.approx(93.20 * 1000 ** 0.47) and out["cannot_plan"] and not out["step_model"]
    assert main(["plan", "--law", "deepseek2024", *base, "--seq-len", "4096", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["b_opt"] == pytest.approx(0.2920 * (6e9 * 2e10) ** 0.3271 / 4096) and out["cbs"] is None
    for argv, match in ((["--law", "zhang2024-chinchilla", *base, "--chips-max", "0"], "chips-max"),
                        (["--law", "deepseek2024", *base], "--seq-len"),
                        (["--law", "zhang2024-chinchilla", *base, "--seq-len", "2048"], "disagrees"),
                        (["--law", "steplaw2025", *base], "not shipped")):
        assert main(["plan", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and match in err and "Traceback" not in err, err
