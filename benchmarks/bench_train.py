"""Training throughput and model FLOP utilisation (MFU) of the LM trainer's compiled step.

For a few model sizes, times ``scaling.lm.train``'s jitted step (the one every run uses: AdamW,
EWA, donation, data-parallel sharding) on random token batches after a warm-up, and reports
tokens/s and MFU = achieved model FLOP/s / the fp32 matmul peak measured in the same process
(a square ``jnp.dot`` timed the same way). Model FLOPs per token follow ``scaling.lm.model.
flops_per_token`` (6 N + 6 D V + 12 L D T; PaLM App. B). One short real ``train()`` run on
the default corpus gives the loop's tokens/s (data loading, host pulls, evals excluded) next to
the bare step's, as a ratio measured in the same process.

    python benchmarks/bench_train.py [--out benchmarks/bench_train.json] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from scaling.lm import mesh as parallel, optim  # noqa: E402
from scaling.lm.config import TrainConfig  # noqa: E402
from scaling.lm.model import build, flops_per_token  # noqa: E402
from scaling.store import atomic_write_json  # noqa: E402
from scaling.lm.step import compiled, step_shape  # noqa: E402
from scaling.lm.train import train  # noqa: E402
from scaling.machine import cpu_model

# (d_model, n_layers, n_heads, seq_len, batch) -- tiny to ~3M non-embedding parameters
SIZES = [(64, 2, 4, 64, 32), (128, 4, 4, 128, 16), (256, 4, 8, 128, 16)]
VOCAB = 8192  # the default tokenizer's vocabulary
MATMUL_N = 1024
MIN_SECONDS = 3.0  # time each measurement at least this long
WARMUP_CALLS = 3




def timed(fn, min_seconds: float) -> tuple[float, int]:
    """(seconds per call, calls) of ``fn()`` (which must block), after warm-up."""
    for _ in range(WARMUP_CALLS):
        fn()
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls, calls


def matmul_peak(n: int, min_seconds: float) -> float:
    """fp32 FLOP/s of an n x n x n matmul on the default device (2 n^3 FLOPs)."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    f = jax.jit(lambda x, y: x @ y)
    per_call, _ = timed(lambda: f(a, b).block_until_ready(), min_seconds)
    return 2 * n ** 3 / per_call


def step_throughput(d, layers, heads, seq, batch, min_seconds):
    config = TrainConfig.from_dict({"model": {"d_model": d, "n_layers": layers, "n_heads": heads, "seq_len": seq},
                                    "data": {"tokens": 1000 * batch * seq}, "batch_size": batch,
                                    "ewa": {"decays": [0.999]}})
    model = build(config.model, VOCAB)
    mesh = parallel.data_mesh()
    fns = compiled(model, step_shape(config, batch), mesh)
    t0 = time.perf_counter()
    state = fns.init(np.int32(0))
    hp = parallel.put_replicated(optim.hparams(config), mesh)
    tokens = np.random.default_rng(0).integers(0, VOCAB, size=(batch, seq + 1)).astype(np.int32)
    batch_arr = jax.device_put(tokens, parallel.batch_sharding(mesh))
    holder = {"state": state}

    def one():
        holder["state"], m = fns.step(holder["state"], batch_arr, hp)
        m["train_loss"].block_until_ready()

    one()
    compile_s = time.perf_counter() - t0
    per_step, calls = timed(one, min_seconds)
    tok_s = batch * seq / per_step
    fpt = flops_per_token(config.model, model.vocab_size, seq)
    return {"d_model": d, "n_layers": layers, "n_heads": heads, "seq_len": seq, "batch_size": batch,
            "vocab": model.vocab_size, "non_embedding_params": config.model.non_embedding_params,
            "flops_per_token": fpt, "step_s": per_step, "steps_timed": calls, "tokens_per_s": tok_s,
            "model_flops_per_s": fpt * tok_s, "first_call_s": compile_s}


def loop_throughput(min_steps: int = 150) -> dict:
    """A real train() on the default corpus (smallest size) vs its bare step, same process."""
    d, layers, heads, seq, batch = SIZES[0]
    spec = {"model": {"d_model": d, "n_layers": layers, "n_heads": heads, "seq_len": seq},
            "data": {"tokens": min_steps * batch * seq, "val_tokens": 4096},
            "eval": {"points": 2, "geometric_points": 0}, "ewa": {"decays": [0.999]},
            "batch_size": batch, "log_every": 10}
    with tempfile.TemporaryDirectory() as tmp:
        summary = train(TrainConfig.from_dict(spec), Path(tmp) / "run")
    return {"size": list(SIZES[0]), "steps": min_steps, "loop_tokens_per_s": summary["tokens_per_s"],
            "final_eval_loss": summary["final_eval_loss"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).with_name("bench_train.json")))
    ap.add_argument("--quick", action="store_true", help="1 s per measurement, smallest size only")
    args = ap.parse_args(argv)
    min_s = 1.0 if args.quick else MIN_SECONDS
    sizes = SIZES[:1] if args.quick else SIZES

    peak = matmul_peak(MATMUL_N, min_s)
    rows = []
    for size in sizes:
        r = step_throughput(*size, min_s)
        r["mfu"] = r["model_flops_per_s"] / peak
        rows.append(r)
        print(f"d={r['d_model']:4d} L={r['n_layers']} T={r['seq_len']:4d} B={r['batch_size']:3d} "
              f"N={r['non_embedding_params']:>9,d}: {r['tokens_per_s']:10.0f} tok/s  MFU {100 * r['mfu']:5.1f}%",
              file=sys.stderr)
    loop = loop_throughput()
    loop["step_tokens_per_s"] = rows[0]["tokens_per_s"]
    loop["loop_over_step"] = loop["loop_tokens_per_s"] / rows[0]["tokens_per_s"]
    print(f"loop/step throughput ratio (smallest size): {loop['loop_over_step']:.2f}", file=sys.stderr)

    dev = jax.devices()[0]
    result = {
        "benchmark": "bench_train",
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "jax": jax.__version__,
                    "backend": jax.default_backend(), "device": dev.device_kind, "n_devices": jax.device_count(),
                    "load_average_at_start": os.getloadavg()},
        "precision": "float32 params and compute",
        "matmul_peak_flops_per_s": peak, "matmul_n": MATMUL_N,
        "sizes": rows, "loop": loop,
        "notes": "MFU = flops_per_token * tokens/s / fp32 matmul peak measured in the same process; "
                 "the CPU was shared with other jobs (load average recorded), so absolute numbers are "
                 "lower bounds and only same-run ratios are comparable.",
    }
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
