"""Sweep wall time: one cpu_reference group trained one run at a time vs as vmapped, racing lr grids.

Takes one model of ``runs/grids/cpu_reference.yaml`` (default d16-L2: 7 batch sizes x 4 lrs at
D = 20 N), runs ``scaling sweep`` on it twice in fresh directories with cold compilation caches --
``together: false`` and ``together: true`` -- and records each wall time, the per-batch-size S(B)
of both (they must agree up to float reduction order), and the machine.

    python benchmarks/bench_sweep_together.py [--model d16-L2] [--out benchmarks/results/sweep_together_cpu.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from scaling.machine import cpu_model, load_average  # noqa: E402
from scaling.store import atomic_write_json  # noqa: E402
from scaling.sweep import steps_rows  # noqa: E402

GRID = REPO / "runs" / "grids" / "cpu_reference.yaml"


def best_steps(rows) -> dict:
    """S(B): the minimum over lrs of the runs that reached the target, per batch size."""
    out: dict = {}
    for r in rows:
        if r["status"] == "done" and r["steps"] is not None:
            b = int(r["batch_size"])
            out[b] = min(out.get(b, float("inf")), float(r["steps"]))
    return dict(sorted(out.items()))


def run_mode(grid: dict, together: bool, tmp: Path) -> dict:
    path = tmp / f"grid_{together}.yaml"
    path.write_text(yaml.safe_dump({**grid, "together": together}))
    out, cache = tmp / f"runs_{together}", tmp / f"cache_{together}"
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "scaling", "sweep", str(path), "--out", str(out),
                    "--compile-cache", str(cache), "--quiet"], check=True, env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    rows = steps_rows(out)
    return {"wall_s": wall, "runs": len(rows), "steps_to_target": best_steps(rows),
            "statuses": {s: sum(r["status"] == s for r in rows) for s in sorted({r["status"] for r in rows})}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="d16-L2")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "sweep_together_cpu.json"))
    a = p.parse_args(argv)
    grid = yaml.safe_load(GRID.read_text())
    grid["models"] = [m for m in grid["models"] if m.get("name") == a.model]
    if not grid["models"]:
        print(f"bench_sweep_together: error: no model {a.model!r} in {GRID}", file=sys.stderr)
        return 2
    grid["name"] = "bench_together"
    import jax

    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        separate = run_mode(grid, False, Path(tmp))
        together = run_mode(grid, True, Path(tmp))
    agree = {b: together["steps_to_target"].get(b, None) for b in separate["steps_to_target"]}
    result = {
        "benchmark": f"scaling sweep wall time of one cpu_reference model ({a.model}: every batch size x lr "
                     f"at D = 20 N), one run at a time vs lr grids trained together (vmapped, racing)",
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "jax": jax.__version__, "backend": jax.default_backend(), "load_average_before": load_before},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "separate": separate, "together": together,
        "together_over_separate_wall": together["wall_s"] / separate["wall_s"],
        "steps_to_target_together_vs_separate": agree,
        "notes": "cold compilation cache for each mode; compile time included, as a sweep pays it",
    }
    atomic_write_json(a.out, result)
    print(f"separate {separate['wall_s']:.0f} s, together {together['wall_s']:.0f} s "
          f"(ratio {result['together_over_separate_wall']:.2f}); S(B) separate {separate['steps_to_target']}, "
          f"together {together['steps_to_target']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
