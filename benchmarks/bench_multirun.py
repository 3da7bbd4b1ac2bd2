"""Benchmark: K runs trained as one vmapped program (scaling.lm.many.train_many) vs K sequential runs.

Workload: a learning-rate grid of K runs of one small LM at one batch size on the embedded
default corpus read as bytes, the full run loop with evaluations and run-directory writing.
Both paths are warmed first (compilation excluded; the executables are cached in-process), then
timed interleaved, ``repeats`` times, median reported:

  - sequential: ``scaling.lm.train.train`` called on the grid's runs one after the other;
  - together:   ``train_many`` on the K configs.

Aggregate tokens/s = runs x tokens per run / wall seconds. The sequential path's tokens/s do not
depend on K (each run is the same work), so it is timed on at most ``max_sequential`` of the K
runs (``sequential_runs`` in each row); ``speedup_wall`` is together over sequential tokens/s.
``step_tokens_per_s`` uses the summaries' ``tokens_per_s`` (eval and IO excluded), summed over
the runs for ``together``. On a CPU one small run already keeps the cores busy, so the speed-up
is modest; the point of vmapping is an accelerator that one small run leaves idle (issue #19
asks for >= 5x at K = 8 on a GPU).

Presets (``--preset``): ``cpu`` (d_model 32, 2 layers, batch 8 x 32 tokens, K = 1, 4, 8, 16: the
shipped benchmarks/results/multirun_cpu.json), ``gpu`` (d_model 256, 4 layers: 3.1M
non-embedding parameters, batch 16 x 256 tokens, K = 1, 8, 32), ``quick`` (d_model 16, 1
layer, batch 4 x 32, K = 1, 8: a CPU smoke test, each K costing its own compiles). The result
file is rewritten after every K, so a run cut off at a time limit keeps the rows it finished.

    python benchmarks/bench_multirun.py [--preset cpu|gpu|quick] [--out FILE]
    (default FILE: benchmarks/results/multirun_<backend>.json)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a plain script from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from scaling.lm.config import TrainConfig  # noqa: E402
from scaling.lm.many import train_many  # noqa: E402
from scaling.lm.train import train  # noqa: E402
from scaling.machine import describe  # noqa: E402
from scaling.store import atomic_write_json  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
LR_LOW, LR_HIGH = 1e-3, 3e-2  # the grid spans this range geometrically


@dataclass(frozen=True)
class Preset:
    d_model: int
    n_layers: int
    n_heads: int
    seq_len: int
    batch: int
    steps: int
    repeats: int
    ks: tuple
    max_sequential: int  # sequential runs timed per K (their tokens/s do not depend on K)
    val_tokens: int = 2048


PRESETS = {
    "cpu": Preset(d_model=32, n_layers=2, n_heads=2, seq_len=32, batch=8, steps=60, repeats=3, ks=(1, 4, 8, 16),
                  max_sequential=16),
    "gpu": Preset(d_model=256, n_layers=4, n_heads=4, seq_len=256, batch=16, steps=200, repeats=2, ks=(1, 8, 32),
                  max_sequential=4, val_tokens=16384),
    # the shapes of benchmarks/grids/gpu_bench_quick.yaml at its B_ref (one compile serves both)
    "quick": Preset(d_model=16, n_layers=1, n_heads=2, seq_len=32, batch=4, steps=10, repeats=1, ks=(1, 8),
                    max_sequential=2),
}


def spec(p: Preset, lr: float) -> dict:
    tokens_per_step = p.batch * p.seq_len
    return {"model": {"d_model": p.d_model, "n_layers": p.n_layers, "n_heads": p.n_heads, "seq_len": p.seq_len},
            "data": {"source": "default", "tokenizer": "bytes", "tokens": p.steps * tokens_per_step,
                     "val_tokens": p.val_tokens},
            "optim": {"lr": lr, "warmup_tokens": 5 * tokens_per_step},
            "ewa": {"half_lives_tokens": [4 * tokens_per_step]},
            "eval": {"points": 4, "geometric_points": 2, "batch_size": 32},
            "batch_size": p.batch, "log_every": 10, "seed": 0}


def grid(p: Preset, k: int) -> list[TrainConfig]:
    lrs = np.geomspace(LR_LOW, LR_HIGH, k) if k > 1 else [LR_LOW]
    return [TrainConfig.from_dict(spec(p, float(lr))) for lr in lrs]


def machine_info() -> dict:
    return {**describe(REPO), "jax": jax.__version__, "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()], "device_kind": jax.devices()[0].device_kind}


def sequential(configs, root: Path) -> tuple[float, list]:
    t = time.perf_counter()
    out = [train(c, root / f"seq{i}") for i, c in enumerate(configs)]
    return time.perf_counter() - t, out


def together(configs, root: Path) -> tuple[float, list]:
    t = time.perf_counter()
    out = train_many(configs, [root / f"vm{i}" for i in range(len(configs))])
    return time.perf_counter() - t, out


def measure(p: Preset, k: int) -> dict:
    """One row: K runs together against min(K, max_sequential) of them one after another."""
    configs = grid(p, k)
    seq_configs = configs[:min(k, p.max_sequential)]
    tokens_per_run = p.steps * p.batch * p.seq_len
    with tempfile.TemporaryDirectory() as tmp:  # warm-up: compile both paths
        sequential(seq_configs[:1], Path(tmp))
        together(configs, Path(tmp))
    seq_t, vm_t, seq_step, vm_step = [], [], [], []
    for _ in range(p.repeats):  # interleaved, so machine load affects both alike
        with tempfile.TemporaryDirectory() as tmp:
            t, out = sequential(seq_configs, Path(tmp))
            seq_t.append(t)
            seq_step.append(len(out) * tokens_per_run / sum(r["final_tokens"] / r["tokens_per_s"] for r in out))
        with tempfile.TemporaryDirectory() as tmp:
            t, out = together(configs, Path(tmp))
            vm_t.append(t)
            busy = out[0]["final_tokens"] / out[0]["tokens_per_s"]  # one shared loop: same for all runs
            vm_step.append(k * tokens_per_run / busy)
    s, v = statistics.median(seq_t), statistics.median(vm_t)
    seq_tok_s, vm_tok_s = len(seq_configs) * tokens_per_run / s, k * tokens_per_run / v
    return {"K": k, "tokens_per_run": tokens_per_run, "sequential_runs": len(seq_configs),
            "sequential_wall_s": s, "together_wall_s": v,
            "sequential_tokens_per_s": seq_tok_s, "together_tokens_per_s": vm_tok_s,
            "speedup_wall": vm_tok_s / seq_tok_s,
            "sequential_step_tokens_per_s": statistics.median(seq_step),
            "together_step_tokens_per_s": statistics.median(vm_step),
            "speedup_step": statistics.median(vm_step) / statistics.median(seq_step),
            "wall_samples": {"sequential": seq_t, "together": vm_t}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--quick", action="store_true", help="same as --preset quick")
    parser.add_argument("--steps", type=int, help="steps per run (default: the preset's)")
    parser.add_argument("--repeats", type=int, help="timed repeats per K (default: the preset's)")
    parser.add_argument("--out", help="result JSON (default benchmarks/results/multirun_<backend>.json)")
    args = parser.parse_args(argv)
    p = PRESETS["quick" if args.quick else args.preset]
    p = Preset(**{**asdict(p), **{k: v for k, v in (("steps", args.steps), ("repeats", args.repeats)) if v}})
    path = Path(args.out) if args.out else RESULTS / f"multirun_{jax.default_backend()}.json"
    result = {"benchmark": "multirun", "what": __doc__.split("\n\n")[0], "preset": args.preset if not args.quick
              else "quick", "settings": asdict(p),
              "model": {"d_model": p.d_model, "n_layers": p.n_layers, "n_heads": p.n_heads, "tokenizer": "bytes",
                        "non_embedding_params": 12 * p.n_layers * p.d_model ** 2},
              "batch_size": p.batch, "seq_len": p.seq_len, "steps": p.steps, "repeats": p.repeats,
              "lr_grid": [LR_LOW, LR_HIGH], "command": "python benchmarks/bench_multirun.py "
              + " ".join(sys.argv[1:] if argv is None else argv),
              "machine": machine_info(), "results": [], "complete": False}
    for k in p.ks:
        row = measure(p, k)
        result["results"].append(row)
        result["complete"] = len(result["results"]) == len(p.ks)
        atomic_write_json(path, result)
        print(f"K={k:2d}  sequential {row['sequential_tokens_per_s']:9.0f} tok/s  together "
              f"{row['together_tokens_per_s']:9.0f} tok/s  x{row['speedup_wall']:.2f} (wall)  "
              f"x{row['speedup_step']:.2f} (steps only)", file=sys.stderr)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
