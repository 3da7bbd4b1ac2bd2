"""The NQM workload writes real run directories with the LM trainer's summary keys. (A run's wall
time, milliseconds, is measured in benchmarks/bench_nqm.py, not asserted here.)"""

import numpy as np
import pytest

from scaling import rundir
from scaling.errors import ScalingError
from scaling.nqm import NQM, Optimizer, exact_sweep
from scaling.workloads.nqm import NQMConfig, NQMWorkload

SUMMARY_KEYS = {"status", "reason", "target_loss", "steps_to_target", "tokens_to_target", "final_step",
                "final_tokens", "final_eval_loss", "final_eval_loss_ewa", "best_eval_loss", "params", "tokens",
                "batch_size", "seq_len", "lr", "seed", "eval_metric"}
W = NQMWorkload()
REFERENCE_SPEC = {"batch_size": 8, "lr": 0.5, "tokens": 8192, "dim": 100}  # a reference run: no target


def test_reference_run_writes_run_directory(tmp_path):
    config = W.build_config(REFERENCE_SPEC)
    summary = W.run(config, tmp_path / "ref")
    assert SUMMARY_KEYS <= set(summary)
    assert rundir.read_status(tmp_path / "ref") == "done"
    assert rundir.read_summary(tmp_path / "ref") == summary
    assert rundir.read_config(tmp_path / "ref")["workload"] == "nqm"
    rows = rundir.read_metrics(tmp_path / "ref")
    assert rows[0]["step"] == 0 and rows[-1]["step"] == 8192 // 8 == summary["final_step"]
    assert all(r["tokens"] == r["step"] * 8 for r in rows)
    assert summary["final_eval_loss"] == rows[-1]["eval_loss"] < rows[0]["eval_loss"]
    assert (W.params(config), W.tokens(config)) == (100, 8192)
    # rerunning replaces the record instead of appending to it
    W.run(config, tmp_path / "ref")
    assert len(rundir.read_metrics(tmp_path / "ref")) == len(rows)


def test_target_runs_match_exact_sweep(tmp_path):
    problem, opt = NQM(dim=100, p=1.0), Optimizer(momentum=0.5)
    batches, lrs = [4, 32, 256], [0.02, 0.2, 1.0]
    sweep = exact_sweep(problem, opt, batches, lrs, budget=4096, reference_batch=4)
    spec = {"dim": 100, "momentum": 0.5, "tokens": 4096, "max_tokens": 4 * 4096, "target_loss": sweep.target}
    done = 0
    for i, b in enumerate(batches):
        for j, lr in enumerate(lrs):
            run = tmp_path / f"b{b}-lr{lr}"
            summary = W.run(W.build_config({**spec, "batch_size": b, "lr": lr}), run)
            if np.isnan(sweep.steps[i, j]):
                assert summary["status"] in ("censored", "diverged") and summary["steps_to_target"] is None
                continue
            done += 1
            assert summary["status"] == "done"
            assert summary["steps_to_target"] == pytest.approx(sweep.steps[i, j], rel=1e-12)
            assert summary["tokens_to_target"] == pytest.approx(b * summary["steps_to_target"])
            # stop_at_target: the last row is the first eval at/below the target
            rows = rundir.read_metrics(run)
            assert rows[-1]["eval_loss"] <= sweep.target < rows[-2]["eval_loss"]
    assert 3 <= done < 9


def test_censored_and_diverged(tmp_path):
    censored = W.run(W.build_config({"dim": 50, "tokens": 1024, "lr": 0.1, "target_loss": 1e-6}), tmp_path / "c")
    assert censored["status"] == "censored" and censored["steps_to_target"] is None
    diverged = W.run(W.build_config({"dim": 50, "tokens": 1024, "lr": 2.5}), tmp_path / "d")
    assert diverged["status"] == "diverged" and rundir.read_status(tmp_path / "d") == "diverged"


def test_sampled_mode_depends_on_seed(tmp_path):
    spec = {"dim": 50, "tokens": 2048, "batch_size": 2, "lr": 0.5, "mode": "sampled"}
    a = W.run(W.build_config({**spec, "seed": 0}), tmp_path / "a")["final_eval_loss"]
    b = W.run(W.build_config({**spec, "seed": 1}), tmp_path / "b")["final_eval_loss"]
    a2 = W.run(W.build_config({**spec, "seed": 0}), tmp_path / "a2")["final_eval_loss"]
    assert a == a2 != b


@pytest.mark.parametrize("spec", [{"dimm": 3}, {"lr": -1.0}, {"momentum": 1.0}, {"q": 2.0},
                                  {"batch_size": 10**9}, {"evals_per_octave": 3}, {"mode": "exact"},
                                  {"p": float("nan")}])
def test_bad_config_is_scaling_error(spec):
    with pytest.raises(ScalingError):
        W.build_config(spec)


def test_axis_keys_are_config_fields():
    fields = set(NQMConfig.__dataclass_fields__)
    assert set(W.axis_keys) == {"batch_size", "lr", "tokens", "seed", "target_loss", "max_tokens", "race_steps"}
    assert set(W.axis_keys.values()) <= fields
