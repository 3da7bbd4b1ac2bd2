"""`scaling train`: bad configs rejected with one line and exit status 2, nothing written."""

import os
import subprocess
import sys

import pytest
import yaml

from scaling.cli import main
from train_helpers import tiny_spec


@pytest.fixture()
def cfg(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(tiny_spec(steps=20)))
    return path


@pytest.mark.parametrize("override,message", [
    ("model.d_modle=64", "unknown config key 'model.d_modle'"),
    ("batch_size=abc", "batch_size"),
    ("microbatch_size=5", "not divisible by microbatch_size"),
    ("data.seq_len=64", "larger than the model's seq_len"),
    ("optim.warmup_tokens=100000000", "longer than the run"),
    ("optim.lr=-1", "optim.lr must be positive"),
    ("optim.schedule=linear", "optim.schedule"),
    ("max_tokens=100000000", "needs a target_loss"),
])
def test_bad_config_exits_2_with_one_line(cfg, tmp_path, capsys, override, message):
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--set", override, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("scaling train: error:") and message in err and "\n" not in err
    assert not out.exists()  # nothing half-written


def test_missing_and_malformed_files(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.yaml")]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [1, 2\n")
    assert main(["train", str(bad)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "no such file" in lines[0] and "malformed YAML" in lines[1]


def test_real_process_exit_status(cfg, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "scaling", "train", str(cfg), "--set", "batch_size=0"],
                          capture_output=True, text=True, env=dict(os.environ, JAX_PLATFORMS="cpu"), timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "scaling train: error: batch_size must be positive, got 0"


def test_cli_trains_into_default_run_dir(cfg, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(cfg), "--quiet", "--json"]) == 0
    import json

    from scaling.identity import run_id
    from scaling.lm.config import TrainConfig
    summary = json.loads(capsys.readouterr().out)
    rid = run_id("lm", TrainConfig.from_dict(tiny_spec(steps=20)))
    run_dir = tmp_path / "runs" / "train" / rid
    assert summary["status"] == "done" and (run_dir / "status").read_text().strip() == "done"
    # one identity: directory name == config.json run_id == summary.json run_id
    assert json.loads((run_dir / "config.json").read_text())["run_id"] == rid == summary["run_id"]
    assert json.loads((run_dir / "summary.json").read_text())["run_id"] == rid
    assert summary["final_step"] == 20
