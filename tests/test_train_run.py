"""Whole runs of the LM trainer on the default corpus (byte tokenizer, tiny model, CPU)."""

import os
import signal
import subprocess
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from scaling import rundir  # noqa: E402
from scaling.lm.config import TrainConfig  # noqa: E402
from scaling.target import crossing_step  # noqa: E402
from scaling.lm.train import train  # noqa: E402
from train_helpers import tiny_spec  # noqa: E402

TIMING_KEYS = ("tokens_per_s",)


def _losses(rows):
    """Rows without timing fields (those legitimately differ between runs)."""
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted 120-step run, checkpointing every 40 steps."""
    spec = tiny_spec(steps=120, checkpoint_every_tokens=40 * 16 * 32)
    out = tmp_path_factory.mktemp("reference")
    summary = train(TrainConfig.from_dict(spec), out)
    return spec, out, summary


def test_loss_falls_on_default_corpus(reference):
    spec, out, summary = reference
    rows = rundir.read_metrics(out)
    evals = [r for r in rows if "eval_loss" in r]
    assert summary["status"] == "done" and summary["final_step"] == 120
    assert evals[0]["step"] == 1 and evals[-1]["step"] == 120
    assert evals[0]["eval_loss"] > 5.0  # ~ln(257) at initialisation
    assert summary["final_eval_loss"] < evals[0]["eval_loss"] - 2.0
    assert summary["final_eval_loss_ewa"] < 3.5
    train_losses = [r["train_loss"] for r in rows if "train_loss" in r]
    assert np.mean(train_losses[-3:]) < evals[0]["eval_loss"] - 2.0


def test_run_directory_is_complete(reference):
    spec, out, summary = reference
    assert rundir.read_status(out) == "done"
    assert not (out / "checkpoints").exists()  # removed once finished
    cfg = rundir.read_config(out)
    assert cfg["workload"] == "lm" and cfg["config"]["batch_size"] == 16
    assert cfg["config"]["derived"]["ewa_decays"] == pytest.approx([0.5 ** 0.25])
    for key in ("status", "reason", "target_loss", "steps_to_target", "tokens_to_target", "final_step",
                "final_tokens", "final_eval_loss", "final_eval_loss_ewa", "best_eval_loss", "params",
                "total_params", "flops_per_token", "tokens", "batch_size", "seq_len", "lr", "seed", "epochs",
                "wall_time_s", "tokens_per_s", "eval_metric"):
        assert key in summary, key
    assert summary["params"] == 12 * 2 * 32 ** 2 and summary["eval_metric"] == "eval_loss_ewa"
    assert summary["tokens_per_s"] > 0
    logs = [r for r in rundir.read_metrics(out) if "train_loss" in r]
    assert [r["step"] for r in logs] == list(range(5, 121, 5))
    assert all({"lr", "grad_norm", "tokens_per_s", "tokens"} <= set(r) for r in logs)
    # a finished run is not retrained: the stored summary comes back
    assert train(TrainConfig.from_dict(spec), out) == rundir.read_summary(out)


def test_target_crossing_interpolated_and_run_stops(reference, tmp_path):
    spec, out, _ = reference
    evals = [r for r in rundir.read_metrics(out) if "eval_loss_ewa" in r]
    steps = [r["step"] for r in evals]
    losses = [r["eval_loss_ewa"] for r in evals]
    k = len(evals) // 2
    target = 0.5 * (losses[k - 1] + losses[k])  # crossed between evals k-1 and k
    expected = crossing_step(steps, losses, target)
    summary = train(TrainConfig.from_dict({**spec, "target_loss": target}), tmp_path / "t")
    assert summary["status"] == "done"
    assert summary["steps_to_target"] == pytest.approx(expected, rel=1e-9)
    assert steps[k - 1] < summary["steps_to_target"] < steps[k]
    assert summary["final_step"] == steps[k]  # stopped at the first eval at/below target
    assert summary["tokens_to_target"] == pytest.approx(expected * 16 * 32)


def test_unreached_target_is_censored(tmp_path):
    summary = train(TrainConfig.from_dict(tiny_spec(steps=20, target_loss=0.05)), tmp_path / "c")
    assert summary["status"] == "censored" and summary["steps_to_target"] is None
    assert summary["final_step"] == 20 and rundir.read_status(tmp_path / "c") == "censored"


def test_divergence_ends_cleanly(tmp_path):
    spec = tiny_spec(steps=20, **{"optim.lr": 1e30, "optim.clip_norm": 0.0, "optim.warmup_tokens": 0})
    summary = train(TrainConfig.from_dict(spec), tmp_path / "d")
    assert summary["status"] == "diverged" and "non-finite" in summary["reason"]
    assert summary["final_step"] < 20
    assert rundir.read_status(tmp_path / "d") == "diverged"


def test_resume_after_sigkill_equals_uninterrupted(reference, tmp_path):
    spec, ref_out, _ = reference
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "scaling", "train", str(cfg_path), "--out", str(out), "--quiet"],
                            env=dict(os.environ, JAX_PLATFORMS="cpu"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    ckpts = out / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if ckpts.exists() and any(p.name.isdigit() for p in ckpts.iterdir()):
            break
        time.sleep(0.005)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert rundir.read_status(out) is None  # really interrupted
    saved = sorted(int(p.name) for p in ckpts.iterdir() if p.name.isdigit())
    assert saved and saved[-1] < 120

    summary = train(TrainConfig.from_dict(spec), out)  # resumes from the checkpoint
    assert summary["status"] == "done" and summary["final_step"] == 120
    assert _losses(rundir.read_metrics(out)) == _losses(rundir.read_metrics(ref_out))
