"""Benchmark: K runs trained as one vmapped program (scaling.lm.many.train_many) vs K sequential runs.

Workload: the tiny LM trainer (d_model 32, 2 layers, byte tokenizer, default corpus), batch 8 x
32 tokens, a learning-rate grid of K runs at one batch size, full run loop with evaluations and
run-directory writing. Both paths are warmed first (compilation excluded; the executables are
cached in-process), then timed interleaved, ``--repeats`` times, median reported:

  - sequential: ``scaling.lm.train.train`` called K times, one after the other;
  - together:   ``train_many`` on the same K configs.

Aggregate tokens/s = K x tokens per run / wall seconds. ``step_tokens_per_s`` uses the
summaries' ``tokens_per_s`` (eval and IO excluded), summed over the runs for ``together``.
On a CPU one small run already keeps the cores busy, so the speed-up is modest; the point of
vmapping is an accelerator that one small run leaves idle.

Writes benchmarks/results/multirun_<machine>.json. Usage: python benchmarks/bench_multirun.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from scaling.lm.config import TrainConfig  # noqa: E402
from scaling.machine import cpu_model, load_average  # noqa: E402
from scaling.lm.many import train_many  # noqa: E402
from scaling.store import atomic_write_json  # noqa: E402
from scaling.lm.train import train  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
KS = (1, 4, 8, 16)
BATCH, SEQ = 8, 32
LR_LOW, LR_HIGH = 1e-3, 3e-2  # the grid spans this range geometrically


def spec(steps: int, lr: float) -> dict:
    return {"model": {"d_model": 32, "n_layers": 2, "n_heads": 2, "seq_len": SEQ},
            "data": {"source": "default", "tokenizer": "bytes", "tokens": steps * BATCH * SEQ, "val_tokens": 2048},
            "optim": {"lr": lr, "warmup_tokens": 5 * BATCH * SEQ},
            "ewa": {"half_lives_tokens": [4 * BATCH * SEQ]},
            "eval": {"points": 4, "geometric_points": 2, "batch_size": 32},
            "batch_size": BATCH, "log_every": 10, "seed": 0}


def grid(k: int, steps: int) -> list[TrainConfig]:
    lrs = np.geomspace(LR_LOW, LR_HIGH, k) if k > 1 else [LR_LOW]
    return [TrainConfig.from_dict(spec(steps, float(lr))) for lr in lrs]


def machine_info() -> dict:
    return {"host": socket.gethostname(), "cpu": cpu_model(), "cores": os.cpu_count(),
            "python": platform.python_version(), "jax": jax.__version__, "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()], "load_average": load_average()}


def sequential(configs, root: Path) -> tuple[float, list]:
    t = time.perf_counter()
    out = [train(c, root / f"seq{i}") for i, c in enumerate(configs)]
    return time.perf_counter() - t, out


def together(configs, root: Path) -> tuple[float, list]:
    t = time.perf_counter()
    out = train_many(configs, [root / f"vm{i}" for i in range(len(configs))])
    return time.perf_counter() - t, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer steps and repeats (smoke test)")
    parser.add_argument("--machine", default=None, help="name in the result file (default: backend)")
    args = parser.parse_args()
    steps, repeats = (20, 1) if args.quick else (args.steps, args.repeats)
    tokens_per_run = steps * BATCH * SEQ
    rows = []
    for k in KS:
        configs = grid(k, steps)
        with tempfile.TemporaryDirectory() as tmp:  # warm-up: compile both paths
            sequential(configs[:1], Path(tmp))
            together(configs, Path(tmp))
        seq_t, vm_t, seq_step, vm_step = [], [], [], []
        for _ in range(repeats):  # interleaved, so machine load affects both alike
            with tempfile.TemporaryDirectory() as tmp:
                t, out = sequential(configs, Path(tmp))
                seq_t.append(t)
                seq_step.append(k * tokens_per_run / sum(r["final_tokens"] / r["tokens_per_s"] for r in out))
            with tempfile.TemporaryDirectory() as tmp:
                t, out = together(configs, Path(tmp))
                vm_t.append(t)
                busy = out[0]["final_tokens"] / out[0]["tokens_per_s"]  # one shared loop: same for all runs
                vm_step.append(k * tokens_per_run / busy)
        s, v = statistics.median(seq_t), statistics.median(vm_t)
        row = {"K": k, "tokens_per_run": tokens_per_run,
               "sequential_wall_s": s, "together_wall_s": v,
               "sequential_tokens_per_s": k * tokens_per_run / s, "together_tokens_per_s": k * tokens_per_run / v,
               "speedup_wall": s / v,
               "sequential_step_tokens_per_s": statistics.median(seq_step),
               "together_step_tokens_per_s": statistics.median(vm_step),
               "speedup_step": statistics.median(vm_step) / statistics.median(seq_step),
               "wall_samples": {"sequential": seq_t, "together": vm_t}}
        rows.append(row)
        print(f"K={k:2d}  sequential {row['sequential_tokens_per_s']:9.0f} tok/s  together "
              f"{row['together_tokens_per_s']:9.0f} tok/s  x{row['speedup_wall']:.2f} (wall)  "
              f"x{row['speedup_step']:.2f} (steps only)", file=sys.stderr)
    result = {"benchmark": "multirun", "what": __doc__.split("\n\n")[0],
              "model": {"d_model": 32, "n_layers": 2, "n_heads": 2, "tokenizer": "bytes"},
              "batch_size": BATCH, "seq_len": SEQ, "steps": steps, "repeats": repeats,
              "lr_grid": [LR_LOW, LR_HIGH], "machine": machine_info(), "results": rows}
    name = args.machine or jax.default_backend()
    path = RESULTS / f"multirun_{name}.json"
    atomic_write_json(path, result)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
