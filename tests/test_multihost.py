"""Multi-host training on this machine: one run spread over 2 processes (``jax.distributed`` on the
CPU backend, 2 simulated devices each, SCALING_COORDINATOR / SCALING_NUM_PROCESSES /
SCALING_PROCESS_ID as scaling.lm.mesh reads them) records the same metrics as one process with 4
devices, through a checkpoint, an interruption of both processes and a resume; only process 0
writes the record."""

import json
import os
import socket
import subprocess
import sys

import pytest
import yaml

from scaling import rundir
from scaling.store import read_jsonl
from train_helpers import B, L, tiny_spec

STEPS = 12
CHECKPOINT_STEPS = 4
RTOL = 1e-5  # the cross-process all-reduce may sum in another order than one process's
COMPARED = ("train_loss", "grad_norm", "eval_loss", "eval_loss_ewa")

# Stops both processes right after their first checkpoint, as a kill would (deterministically).
INTERRUPTED = """
import sys
from scaling.lm import checkpoint
real = checkpoint.RunCheckpoints.save
def save(self, *a, **k):
    real(self, *a, **k)
    raise KeyboardInterrupt
checkpoint.RunCheckpoints.save = save
from scaling.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _env(devices: int, **extra) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_processes(args: list, code=None) -> tuple:
    """Run ``scaling ARGS`` as processes 0 and 1 of one jax.distributed job: (exit codes, outputs)."""
    port = _free_port()
    head = [sys.executable, "-c", code] if code else [sys.executable, "-m", "scaling"]
    procs = [subprocess.Popen(head + args, env=_env(2, SCALING_COORDINATOR=f"127.0.0.1:{port}",
                                                    SCALING_NUM_PROCESSES="2", SCALING_PROCESS_ID=str(i)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    try:
        outs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return [p.returncode for p in procs], outs


def test_two_processes_train_like_one_with_four_devices(tmp_path):
    spec = tiny_spec(steps=STEPS, log_every=2, checkpoint_every_tokens=CHECKPOINT_STEPS * B * L)
    spec["eval"]["points"] = 4
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(spec))
    single, multi = tmp_path / "single", tmp_path / "multi"
    r = subprocess.run([sys.executable, "-m", "scaling", "train", str(config), "--out", str(single), "--quiet"],
                       env=_env(4), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]

    args = ["train", str(config), "--out", str(multi), "--quiet"]
    codes, outs = _two_processes(args, INTERRUPTED)
    assert codes == [130, 130], "\n".join(o[-2000:] for o in outs)  # interrupted after the first checkpoint
    assert rundir.read_status(multi) is None and (multi / "checkpoints" / str(CHECKPOINT_STEPS)).is_dir()
    codes, outs = _two_processes(args)  # resumes from the checkpoint written by both processes
    assert codes == [0, 0], "\n".join(o[-2000:] for o in outs)

    assert rundir.read_status(multi) == rundir.read_status(single) == "done"
    assert not (multi / "checkpoints").exists()
    one, two = read_jsonl(single / rundir.METRICS), read_jsonl(multi / rundir.METRICS)
    assert [row["step"] for row in two] == [row["step"] for row in one]  # one writer, no row twice
    for a, b in zip(one, two):
        assert set(a) == set(b)
        for key in COMPARED:
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=RTOL), (a["step"], key)
    derived = [json.loads((d / rundir.CONFIG).read_text())["config"]["derived"] for d in (single, multi)]
    assert derived[0]["n_devices"] == derived[1]["n_devices"] == 4
    s1, s2 = (json.loads((d / rundir.SUMMARY).read_text()) for d in (single, multi))
    assert s2["final_eval_loss"] == pytest.approx(s1["final_eval_loss"], rel=RTOL)
    assert s2["run_id"] == s1["run_id"]
