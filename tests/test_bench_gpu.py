"""benchmarks/bench_gpu.py in --quick mode on CPU: the same code path as the GPU measurement.

One run (module-scoped) with a simulated device-memory limit between the compiled step's
footprint at batch 4 and at batch 8, so batch 8 runs out of "memory", is retried with gradient
accumulation, and the largest-batch search bisects between 4 and 8. The numbers are a smoke
test, not results.
"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "benchmarks" / "bench_gpu.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench():
    return load_bench()


@pytest.fixture(scope="module")
def quick_run(bench, tmp_path_factory):
    m = bench.Model(**bench.QUICK_MODEL, attention="xla")
    small = bench.program_memory(m, 4, 4)["program_bytes"]  # compiled once, reused by main()
    large = bench.program_memory(m, 8, 8)["program_bytes"]
    assert small < large
    limit = (small + large) // 2
    out = tmp_path_factory.mktemp("bench_gpu") / "quick.json"
    rc = bench.main(["--quick", "--out", str(out), "--simulate-memory-limit-bytes", str(limit),
                     "--search-max", "16", "--search-granularity", "2"])
    assert rc == 0
    return json.loads(out.read_text()), limit


def test_quick_run_records_every_batch(quick_run):
    result, _ = quick_run
    assert result["complete"] is True
    assert [r["batch_size"] for r in result["batches"]] == [4, 8]
    assert result["matmul_peak_flops_per_s"] > 0
    for r in result["batches"]:
        assert r["status"] == "ok"
        assert r["tokens_per_s"] > 0 and r["step_s"] > 0
        assert 0 < r["mfu"] < 1.5
        assert r["model_flops_per_s"] == pytest.approx(r["flops_per_token"] * r["tokens_per_s"])
        assert r["loss_finite"]
        assert r["memory_analysis"]["program_bytes"] > 0
        assert "peak_bytes_in_use" in r["device_memory"]  # None with a reason on CPU


def test_out_of_memory_falls_back_to_microbatches(quick_run):
    result, limit = quick_run
    b4, b8 = result["batches"]
    assert not b4["needed_microbatching"] and b4["microbatch_size"] == 4
    assert b8["attempts"][0] == {"microbatch_size": 8, "status": "oom", "error": b8["attempts"][0]["error"]}
    assert b8["needed_microbatching"] and b8["microbatch_size"] < 8 and 8 % b8["microbatch_size"] == 0
    assert b8["memory_analysis"]["program_bytes"] <= limit


def test_largest_batch_search_bisects_between_fit_and_oom(quick_run):
    search = quick_run[0]["largest_batch"]
    largest, oom = search["largest_batch_without_accumulation"], search["smallest_oom"]
    assert 4 <= largest < oom <= 8
    assert oom - largest <= search["granularity"]
    assert [p["batch_size"] for p in search["probes"]] == [6]  # the one bisection step between 4 and 8


def test_machine_is_recorded(quick_run):
    machine = quick_run[0]["machine"]
    for key in ("device_kind", "platform", "driver_version", "packages", "cuda", "cpu", "cores", "python"):
        assert key in machine
    assert machine["platform"] == "cpu" and machine["driver_version"] is None
    for package in ("jax", "jaxlib", "flax", "optax"):
        assert machine["packages"][package]
    assert quick_run[0]["command"].startswith("python benchmarks/bench_gpu.py --quick")


def test_no_gpu_numbers_without_a_gpu(bench, capsys):
    out = bench.RESULTS_DIR / "gpu_mfu_test_refused.json"
    assert bench.main(["--out", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: refusing to write")
    assert bench.main([]) == 2  # the default --out is under benchmarks/results/ too
    assert "refusing" in capsys.readouterr().err
