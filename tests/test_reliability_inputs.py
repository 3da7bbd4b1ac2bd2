"""Bad input that used to be accepted with exit 0 (issue 20, item 9): one line, exit 2, nothing
written; a reference_batch outside batch_sizes is run and said so."""

from __future__ import annotations

import pytest
import yaml

from scaling.cli import main
from sweep_helpers import NQM_GRID, write_grid
from train_helpers import tiny_spec


def one_error(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"scaling {command}: error: ") and "\n" not in err, err
    return err


def test_empty_train_config(tmp_path, capsys):
    for text in ("", "{}\n", "# nothing but a comment\n"):
        cfg = tmp_path / "empty.yaml"
        cfg.write_text(text)
        assert main(["train", str(cfg), "--out", str(tmp_path / "run")]) == 2
        assert "empty config (no keys)" in one_error(capsys, "train")
    assert not (tmp_path / "run").exists()


def test_duplicate_yaml_key_in_a_config_and_a_grid(tmp_path, capsys):
    cfg = tmp_path / "train.yaml"
    cfg.write_text(yaml.safe_dump(tiny_spec(steps=6)) + "batch_size: 32\n")
    assert main(["train", str(cfg), "--out", str(tmp_path / "run")]) == 2
    assert "duplicate key 'batch_size'" in one_error(capsys, "train")
    grid = write_grid(tmp_path / "g.yaml")
    grid.write_text(grid.read_text().replace("lrs:", "seeds: [1]\nlrs:", 1))  # seeds twice
    assert main(["sweep", str(grid), "--out", str(tmp_path / "s"), "--dry-run"]) == 2
    assert "duplicate key 'seeds'" in one_error(capsys, "sweep")
    assert not (tmp_path / "run").exists() and not (tmp_path / "s").exists()


@pytest.mark.parametrize("argv_tail,message", [
    (["--max-runs", "-1"], "--max-runs must be >= 1, got -1"),
    (["--max-runs", "0"], "--max-runs must be >= 1, got 0"),
    (["--devices", "a,,b"], "--devices 'a,,b': an empty entry"),
    (["--devices", ","], "--devices: empty list"),
])
def test_bad_sweep_options(tmp_path, capsys, argv_tail, message):
    grid = write_grid(tmp_path / "g.yaml")
    assert main(["sweep", str(grid), "--out", str(tmp_path / "s"), *argv_tail]) == 2
    assert message in one_error(capsys, "sweep")
    assert not (tmp_path / "s").exists()


def test_a_grid_with_one_batch_size(tmp_path, capsys):
    for change in ({"batch_sizes": [4]}, {"batch_sizes": [8], "reference_batch": None, "target": 0.1}):
        grid = write_grid(tmp_path / "g.yaml", **change)
        assert main(["sweep", str(grid), "--out", str(tmp_path / "s"), "--dry-run"]) == 2
        assert "a critical batch size needs at least two batch sizes" in one_error(capsys, "sweep")


def test_reference_batch_outside_batch_sizes_is_run_and_said(tmp_path, capsys):
    grid = write_grid(tmp_path / "g.yaml", batch_sizes=[8, 16, 32], reference_batch=4, tokens=[1024])
    assert main(["sweep", str(grid), "--out", str(tmp_path / "s"), "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == (f"scaling sweep: note: {grid}: reference_batch 4 is not in batch_sizes "
                                    "[8, 16, 32]; it is run too (its runs set the target L*)")
    assert " 4 " in captured.out.splitlines()[2]  # B_ref's reference runs are in the plan


def test_status_of_a_directory_without_a_sweep(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("not a sweep")
    for d in ("empty", "other"):
        assert main(["status", str(tmp_path / d)]) == 2
        assert "no sweep found" in one_error(capsys, "status")


@pytest.mark.parametrize("flag,value", [("--seq-len", "0"), ("--seq-len", "-128"), ("--loss", "nan")])
def test_predict_refuses_non_positive_numbers(capsys, flag, value):
    assert main(["predict", "--law", "kaplan2020", "--loss", "3", flag, value]) == 2
    assert f"{flag} must be a positive number" in one_error(capsys, "predict")


def test_figs_with_a_sweep_that_does_not_exist(tmp_path, capsys):
    grid = write_grid(tmp_path / "g.yaml", tokens=[1024], batch_sizes=NQM_GRID["batch_sizes"][:3])
    from scaling.sweep.runner import run_sweep

    run_sweep(grid, out=tmp_path / "runs" / "t", quiet=True)
    assert main(["figs", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "figs"), "--sweep", "nosuch"]) == 2
    assert "--sweep nosuch: no such sweep under" in one_error(capsys, "figs") and not (tmp_path / "figs").exists()
