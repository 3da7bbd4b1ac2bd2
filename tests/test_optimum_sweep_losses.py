"""scaling steps RUNS --losses: the loss grid of a sweep (runs that trained to their budget)."""

import csv
import io

import pytest

from scaling import rundir
from scaling.analysis.lossgrid import load_losses
from scaling.cli import main
from scaling.summary import RunSummary
from scaling.sweep import run_sweep
from scaling.sweep.losses import loss_rows
from sweep_helpers import write_grid

FAST = dict(quiet=True, compile_cache=None, poll_s=0.05)


def _run(root, name, **summary):
    d = root / name
    rundir.write_config(d, {"lr": summary["lr"]}, workload="nqm", run_id=name)
    base = {"params": 32, "tokens": 1024, "seq_len": 1, "seed": 0, "eval_metric": "eval_loss", "reason": "test"}
    rundir.finish(d, RunSummary(**{**base, **summary}))


def test_only_runs_at_their_budget(tmp_path):
    _run(tmp_path, "a", status="done", batch_size=4, lr=0.1, final_tokens=1024, final_eval_loss=0.5)
    _run(tmp_path, "b", status="done", batch_size=4, lr=0.2, final_tokens=512, final_eval_loss=0.4,
         target_loss=0.45)
    _run(tmp_path, "c", status="censored", censored_by="cap", batch_size=8, lr=0.1, final_tokens=4096,
         final_eval_loss=0.6, target_loss=0.45)
    _run(tmp_path, "d", status="diverged", batch_size=8, lr=0.8, final_tokens=64, final_eval_loss=None)
    _run(tmp_path, "e", status="done", batch_size=8, lr=0.1, final_tokens=1024 + 7, final_eval_loss=0.55)
    rows, skipped = loss_rows(tmp_path)
    assert [(r["run_id"], r["status"], r["loss"]) for r in rows] == [("a", "done", 0.5), ("e", "done", 0.55),
                                                                   ("d", "diverged", None)]
    assert skipped == {"stopped before D": 1, "ran past D": 1}


def test_cli_losses_of_a_real_sweep(tmp_path, capsys):
    grid = write_grid(tmp_path / "g.yaml")
    run_sweep(grid, out=tmp_path / "out", **FAST)
    out = tmp_path / "losses.csv"
    assert main(["steps", str(tmp_path / "out"), "--losses", "-o", str(out)]) == 0
    assert "with a final loss at their budget" in capsys.readouterr().err
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    reference = [r for r in rows if r["phase"] == "reference"]
    assert reference and {r["batch_size"] for r in reference} == {"4"}
    done = [r for r in rows if r["status"] == "done"]
    assert done and all(float(r["final_tokens"]) == float(r["tokens"]) and r["loss"] for r in done)
    grid_read = load_losses(out)
    assert {g.tokens for g in grid_read.groups} == {1024.0, 4096.0}
    assert main(["optimum", str(out)]) == 2      # the two-phase protocol trains few cells to D
    assert "batch size(s)" in capsys.readouterr().err
    assert main(["steps", str(tmp_path / "out"), "--losses"]) == 0
    assert capsys.readouterr().out.startswith("params,tokens,batch_size,lr,loss")


def test_no_finished_run_is_an_error(tmp_path, capsys):
    _run(tmp_path, "b", status="done", batch_size=4, lr=0.2, final_tokens=512, final_eval_loss=0.4, target_loss=0.4)
    assert main(["steps", str(tmp_path), "--losses"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no run trained to its budget (1 stopped before D)" in err


@pytest.fixture(autouse=True)
def _cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
