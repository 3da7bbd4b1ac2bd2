"""Per-run overhead of the sweep layer: process start-up and compilation against training time.

Three sweeps of the same tiny LM grid (one model, two batch sizes x three learning rates, every
run trained for exactly D tokens: an unreachable explicit target with a cap of 1 x D, so runs at
one batch size do identical work):

1. ``cold``: a fresh process and an empty JAX persistent compilation cache;
2. ``warm``: a fresh process (new sweep directory) with the cache that ``cold`` filled.

Within a process, the first run at a batch size pays for compilation; later runs at that batch
size reuse the trainer's jitted functions (cached by shape). Reported per process:
start-up (launch -> first run starts: imports, grid expansion), the first run's time at each
batch size, the mean of the later runs there (pure run time: data, training, evals), and their
difference (compilation + first-use overhead), all from ``events.jsonl`` of the sweep.

Writes benchmarks/results/bench_sweep.json. Usage: python benchmarks/bench_sweep.py [--tokens D]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from scaling.machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "bench_sweep.json"
UNREACHABLE_TARGET = 0.01  # nats: no tiny model gets there, so every run trains its whole cap




def grid(tokens: int) -> dict:
    return {"name": "bench", "workload": "lm",
            "base": {"model": {"seq_len": 64}, "data": {"tokenizer": "bytes", "val_tokens": 4096},
                     "ewa": {"half_lives_tokens": [8192]}, "eval": {"points": 8, "geometric_points": 2},
                     "log_every": 50},
            "models": [{"name": "micro", "d_model": 32, "n_layers": 2, "n_heads": 2}],
            "tokens": [tokens], "batch_sizes": [8, 32], "lrs": [0.001, 0.003, 0.01],
            "target": UNREACHABLE_TARGET, "max_tokens_factor": 1}


def sweep_process(grid_path: Path, out: Path, cache: Path) -> dict:
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"))
    cmd = [sys.executable, "-m", "scaling", "sweep", str(grid_path), "--out", str(out), "--compile-cache",
           str(cache), "--quiet"]
    t_launch = time.time()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    t_end = time.time()
    events = [json.loads(l) for l in open(out / "events.jsonl")]
    starts = [e for e in events if e["event"] == "start"]
    runs = []
    for e in events:
        if e["event"] != "finish":
            continue
        info = json.load(open(out / e["run_id"] / "sweep_run.json"))
        summary = json.load(open(out / e["run_id"] / "summary.json"))
        runs.append({"batch_size": info["batch_size"], "lr": info["lr"], "seconds": e["seconds"],
                     "train_loop_s": summary.get("wall_time_s"), "tokens": summary.get("final_tokens"),
                     "status": summary["status"]})
    per_batch = {}
    for b in sorted({r["batch_size"] for r in runs}):
        rs = [r for r in runs if r["batch_size"] == b]
        later = [r["seconds"] for r in rs[1:]]
        mean_later = sum(later) / len(later)
        per_batch[str(b)] = {"first_run_s": rs[0]["seconds"], "later_runs_mean_s": mean_later,
                             "overhead_s": rs[0]["seconds"] - mean_later,
                             "overhead_over_run": (rs[0]["seconds"] - mean_later) / mean_later,
                             "tokens_per_run": rs[0]["tokens"]}
    return {"startup_s": starts[0]["time"] - t_launch, "total_s": t_end - t_launch, "runs": runs,
            "per_batch": per_batch}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=131072, help="D per run (default 131072)")
    args = ap.parse_args(argv)
    import jax

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        g = tmp / "bench.yaml"
        g.write_text(yaml.safe_dump(grid(args.tokens)))
        cache = tmp / "jax_cache"
        cold = sweep_process(g, tmp / "cold", cache)
        warm = sweep_process(g, tmp / "warm", cache)
    result = {"benchmark": "sweep per-run overhead", "machine": {
        "cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
        "python": platform.python_version(), "jax": jax.__version__,
        "load_average_at_start": os.getloadavg()},
        "grid": grid(args.tokens), "cold_cache": cold, "warm_cache": warm,
        "notes": "overhead_s = first run at a batch size minus the mean of later runs at that batch size "
                 "in the same process (same tokens, same shapes): compilation + first-use costs. "
                 "warm_cache = a new process reusing the persistent compilation cache of cold_cache."}
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    for name, r in (("cold cache", cold), ("warm cache", warm)):
        print(f"{name}: start-up {r['startup_s']:.1f} s, total {r['total_s']:.1f} s")
        for b, p in r["per_batch"].items():
            print(f"  B={b}: first run {p['first_run_s']:.2f} s, later runs {p['later_runs_mean_s']:.2f} s, "
                  f"overhead {p['overhead_s']:.2f} s ({100 * p['overhead_over_run']:.0f}% of a run)")
    print(f"wrote {RESULT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
