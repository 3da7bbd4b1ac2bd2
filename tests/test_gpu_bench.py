"""benchmarks/gpu_bench.sh --quick on CPU: the GPU programme of issue #19 end to end with tiny
shapes, and what each of its result files holds.

One run of the script (module-scoped; about a minute on 2 cores with a cold compile cache).
The numbers are a smoke test, not results; the checks are on what the files say.
"""

import csv
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_bench.sh"
FILES = {"versions.json", "bench_gpu.json", "multirun.json", "sweep_steps.csv", "sweep_cbs.json",
         "sweep_runs.tar.gz", "summary.json", "gpu_bench.log"}
DEVICE_TOOL_MAX_FILES = 8  # the device tool brings back at most 8 files from $OUT
PARTS = ["setup", "bench", "multirun", "sweep", "analysis"]
sys.path.insert(0, str(ROOT / "benchmarks"))


def run_script(out: Path, *args: str, work: Path = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=sys.executable,
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    if work is not None:
        env["GPU_BENCH_WORK"] = str(work)
    return subprocess.run(["bash", str(SCRIPT), str(out), *args], capture_output=True, text=True, env=env,
                          timeout=900)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_bench") / "out"
    proc = run_script(out, "--quick", work=tmp_path_factory.mktemp("gpu_bench_work"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def load(out: Path, name: str) -> dict:
    return json.loads((out / name).read_text())


def test_every_part_finished_and_only_the_listed_files_were_written(quick):
    out, proc = quick
    assert {p.name for p in out.iterdir()} == FILES
    assert len(FILES) <= DEVICE_TOOL_MAX_FILES
    summary = load(out, "summary.json")
    assert summary["complete"] is True and summary["quick"] is True
    assert summary["finished"] == PARTS
    for name in PARTS:
        part = summary["parts"][name]
        assert part["status"] == "ok" and part["rc"] == 0 and 0 <= part["seconds"] <= part["guard_s"]
    assert summary["parts"]["bench"]["files"] == ["bench_gpu.json"]
    assert summary["parts"]["analysis"]["files"] == ["sweep_runs.tar.gz", "sweep_steps.csv", "sweep_cbs.json"]
    assert "complete: True" in proc.stderr
    log = (out / "gpu_bench.log").read_text()
    assert "part sweep: exit 0" in log and "nothing to install" in log


def test_versions_record_the_machine_before_jax(quick):
    versions = load(quick[0], "versions.json")
    machine = versions["machine"]
    for package in ("jax", "jaxlib", "flax", "optax", "numpy", "pyyaml", "orbax-checkpoint"):
        assert machine["packages"][package]
    assert machine["python"] and machine["cores"] >= 1 and machine["gpus"] == []
    assert len(machine["git"]["commit"]) == 40
    assert versions["missing_after_install"] == [] and versions["installed_from_wheelhouse"] == []


def test_bench_gpu_measured_mfu_and_memory(quick):
    bench = load(quick[0], "bench_gpu.json")
    assert bench["complete"] is True and bench["quick"] is True
    assert bench["model"]["dtype"] == "bfloat16" and bench["model"]["d_model"] == 32
    assert bench["matmul_peak_flops_per_s"] > 0
    (row,) = bench["batches"]
    assert row["status"] == "ok" and row["batch_size"] == 4 and not row["needed_microbatching"]
    assert 0 < row["mfu"] < 1.5 and row["loss_finite"]
    assert row["model_flops_per_s"] == pytest.approx(row["flops_per_token"] * row["tokens_per_s"])
    assert row["memory_analysis"]["program_bytes"] > 0
    assert row["whole_logits_in_step"] in (True, False)
    assert bench["largest_batch"]["largest_batch_without_accumulation"] == 4
    assert bench["machine"]["platform"] == "cpu"


def test_multirun_compares_together_with_one_after_another(quick):
    multi = load(quick[0], "multirun.json")
    assert multi["complete"] is True and multi["preset"] == "quick"
    assert [r["K"] for r in multi["results"]] == [1, 8]
    for r in multi["results"]:
        assert r["sequential_runs"] == min(r["K"], multi["settings"]["max_sequential"])
        assert r["tokens_per_run"] == multi["steps"] * multi["batch_size"] * multi["seq_len"]
        assert r["speedup_wall"] == pytest.approx(r["together_tokens_per_s"] / r["sequential_tokens_per_s"])
        assert r["together_tokens_per_s"] == pytest.approx(r["K"] * r["tokens_per_run"] / r["together_wall_s"])
    assert multi["machine"]["backend"] == "cpu"


def test_sweep_steps_table_and_cbs(quick):
    out = quick[0]
    rows = list(csv.DictReader(io.StringIO((out / "sweep_steps.csv").read_text())))
    assert sorted(int(r["batch_size"]) for r in rows) == [4, 8, 16]
    done = [r for r in rows if r["status"] == "done"]
    assert len(done) >= 3 and all(float(r["steps"]) > 0 for r in done)
    cbs = load(out, "sweep_cbs.json")
    (group,) = cbs["groups"]
    assert group["reference_batch"] == 4 and group["params"] == float(rows[0]["params"])
    assert group["cbs"] > 0 and group["cbs_ci"][0] <= group["cbs"] <= group["cbs_ci"][1]
    with tarfile.open(out / "sweep_runs.tar.gz") as tar:
        names = tar.getnames()
    assert "sweep/sweep.json" in names
    assert sum(n.endswith("/summary.json") for n in names) == len(rows)
    assert not [n for n in names if "checkpoint" in n]
    state = load(out, "summary.json")["sweep_status"]
    assert state["sweeps"][0]["name"] == "gpu_bench_quick"


def test_bad_arguments_are_refused_in_one_line(tmp_path):
    out = str(tmp_path / "x")
    for args in ([], [out, "--parts", "bench,nope"], [out, "--bogus"], [out, out]):
        proc = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True)
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error:")
    assert not (tmp_path / "x").exists()


def test_without_quick_it_needs_a_gpu(tmp_path):
    if subprocess.run(["bash", "-c", "nvidia-smi -L"], capture_output=True).returncode == 0:
        pytest.skip("this machine has a GPU")
    proc = run_script(tmp_path / "x")
    assert proc.returncode == 2 and "no NVIDIA GPU" in proc.stderr
    assert not (tmp_path / "x").exists()


def test_only_missing_packages_with_a_wheel_are_installed(tmp_path):
    import gpu_bench_parts as parts
    (tmp_path / "tqdm-4.70.1-py3-none-any.whl").write_bytes(b"")
    (tmp_path / "orbax_checkpoint-0.12.8-py3-none-any.whl").write_bytes(b"")
    assert parts.installable(["orbax-checkpoint", "scipy", "tqdm"], tmp_path) == ["orbax-checkpoint", "tqdm"]
    assert parts.installable(["tqdm"], tmp_path / "absent") == []
    assert parts.missing() == []  # this machine has every runtime package at pyproject.toml's versions
