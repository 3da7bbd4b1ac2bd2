"""Benchmark: cost of measuring the gradient noise scale inside a jitted training step.

Real tiny transformer (scaling.lm.model), AdamW (optax), K microbatches accumulated in a lax.scan
as the trainer does. Timed in the same run, interleaved:
  - accum:        accumulation step, no GNS (each microbatch gradient behind ``gns.isolate``);
  - accum+gns:    the same step also carrying sum_k |g_k|^2, |mean g|^2, the App. A estimates and
                  the two EMAs (scaling.lm.gns) -- the "few norms per step" path;
  - plain:        one full-batch gradient, no accumulation (a single-device run, K = 1);
  - plain+split:  the same plus ``gns.split_batch_stats`` (k extra small-batch gradients, the
                  option for runs with neither accumulation nor several devices), i.e. the cost
                  of ONE measured step; at cadence c the amortised overhead is that excess / c.
  - the two accumulation variants without ``gns.isolate`` (what the barrier costs, and whether
    the norm then perturbs the gradient's rounding).
Also checks which GNS paths leave the parameters bit-identical after all the timed steps.
Writes benchmarks/results/gns_<machine>.json. Usage: python benchmarks/bench_gns.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from scaling.lm import gns
from scaling.lm.config import ModelConfig
from scaling.lm.model import build, init_params
from scaling.machine import cpu_model

RESULTS = Path(__file__).resolve().parent / "results"
MODEL = ModelConfig(d_model=64, n_layers=2, n_heads=4, seq_len=64)
VOCAB = 256  # byte vocabulary
BATCH = 32  # sequences per step
N_MICRO = 4  # microbatches (K); microbatch = BATCH / N_MICRO
EMA_DECAY = 0.99
STEPS_PER_BLOCK = 20
REPEATS = 9
CADENCES = (1, 10, 100)




def machine_info() -> dict:
    dev = jax.devices()[0]
    return {"host": socket.gethostname(), "cpu": cpu_model(), "cores": os.cpu_count(),
            "backend": jax.default_backend(), "device": getattr(dev, "device_kind", str(dev)),
            "device_count": jax.device_count(), "python": platform.python_version(),
            "jax": jax.__version__, "numpy": np.__version__}


def make_steps(model, optimizer, unroll=1):
    """The four (six) jitted step variants; ``unroll=True`` only for XLA's static cost count,
    which otherwise counts a scan body once instead of once per iteration."""
    def loss_fn(params, batch_BxL1):
        logits = model.apply({"params": params}, batch_BxL1[:, :-1])
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch_BxL1[:, 1:]).mean()

    grad_fn = jax.grad(loss_fn)
    mb = BATCH // N_MICRO

    def accumulate(params, batch_BxL1, with_gns, barrier=True):
        micro_KxBxL1 = batch_BxL1.reshape(N_MICRO, mb, -1)

        def body(carry, micro):
            g_sum, sq_sum = carry
            g = grad_fn(params, micro)
            if barrier:
                g = gns.isolate(g)
            if with_gns:
                sq_sum = sq_sum + gns.sq_norm(g)
            return (jax.tree_util.tree_map(jnp.add, g_sum, g), sq_sum), None

        init = (jax.tree_util.tree_map(jnp.zeros_like, params), jnp.zeros((), jnp.float32))
        (g_sum, sq_sum), _ = jax.lax.scan(body, init, micro_KxBxL1, unroll=unroll)
        return jax.tree_util.tree_map(lambda g: g / N_MICRO, g_sum), sq_sum

    def apply(state, grads):
        params, opt_state, ema = state
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, ema

    def accum(state, batch, barrier=True):
        grads, _ = accumulate(state[0], batch, False, barrier)
        return apply(state, grads), jnp.zeros(())

    def accum_gns(state, batch, barrier=True):
        grads, sq_sum = accumulate(state[0], batch, True, barrier)
        g2, trace = gns.estimates(gns.from_sq_norms(sq_sum, grads, N_MICRO, mb))
        params, opt_state, ema = apply(state, grads)
        ema = gns.ema_update(ema, g2, trace, EMA_DECAY)
        return (params, opt_state, ema), gns.b_simple(ema)

    def plain(state, batch):
        return apply(state, grad_fn(state[0], batch)), jnp.zeros(())

    def plain_split(state, batch):
        g2, trace = gns.estimates(gns.split_batch_stats(grad_fn, state[0], batch, N_MICRO, mb, unroll))
        params, opt_state, ema = apply(state, grad_fn(state[0], batch))
        ema = gns.ema_update(ema, g2, trace, EMA_DECAY)
        return (params, opt_state, ema), gns.b_simple(ema)

    jit = partial(jax.jit, donate_argnums=(0,))
    return {"accum": jit(accum), "accum+gns": jit(accum_gns), "plain": jit(plain), "plain+split": jit(plain_split),
            "accum_nobarrier": jit(partial(accum, barrier=False)),
            "accum+gns_nobarrier": jit(partial(accum_gns, barrier=False))}


def run_block(step, state, batches):
    t0 = time.perf_counter()
    out = None
    for b in batches:
        state, out = step(state, b)
    jax.block_until_ready((state, out))
    return state, (time.perf_counter() - t0) / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    parser.add_argument("--machine", default=None, help="name in the result file (default: backend)")
    args = parser.parse_args()
    repeats = 2 if args.quick else REPEATS

    model = build(MODEL, VOCAB)
    params = init_params(model, jax.random.key(0))
    optimizer = optax.adamw(1e-3)
    steps = make_steps(model, optimizer)
    unrolled = make_steps(model, optimizer, unroll=True)
    rng = np.random.default_rng(0)
    batches = [jnp.asarray(rng.integers(0, VOCAB, (BATCH, MODEL.seq_len + 1)), jnp.int32)
               for _ in range(STEPS_PER_BLOCK)]

    def fresh():
        p = jax.tree_util.tree_map(jnp.copy, params)
        return p, optimizer.init(p), gns.ema_init()

    states, compile_s, times, cost = {}, {}, {k: [] for k in steps}, {}
    for name, step in steps.items():
        analysis = unrolled[name].lower(fresh(), batches[0]).cost_analysis()  # XLA's static count
        analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
        cost[name] = {k: float(analysis[k]) for k in ("flops", "bytes accessed") if k in analysis}
        t0 = time.perf_counter()
        state, out = step(fresh(), batches[0])  # compile + first step
        jax.block_until_ready(out)
        compile_s[name] = time.perf_counter() - t0
        states[name] = state
    for _ in range(repeats):  # interleaved, so machine load affects all variants alike
        for name, step in steps.items():
            states[name], dt = run_block(step, states[name], batches)
            times[name].append(dt)

    identical = {pair: all(bool(jnp.array_equal(a, b)) for a, b in zip(
        jax.tree_util.tree_leaves(states[pair[0]][0]), jax.tree_util.tree_leaves(states[pair[1]][0])))
        for pair in (("accum", "accum+gns"), ("plain", "plain+split"),
                     ("accum_nobarrier", "accum+gns_nobarrier"))}
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    flops = {k: c.get("flops") for k, c in cost.items()}
    split_excess = med["plain+split"] / med["plain"] - 1
    result = {
        "benchmark": "gradient noise scale overhead inside a jitted step (tiny transformer, AdamW)",
        "machine": machine_info(),
        "model": {"d_model": MODEL.d_model, "n_layers": MODEL.n_layers, "seq_len": MODEL.seq_len,
                  "vocab": VOCAB, "params": int(sum(x.size for x in jax.tree_util.tree_leaves(params)))},
        "batch_size": BATCH, "n_micro": N_MICRO, "microbatch_size": BATCH // N_MICRO,
        "steps_per_block": STEPS_PER_BLOCK, "repeats": repeats,
        "median_step_s": med, "all_step_s": times, "compile_s": compile_s,
        "xla_cost": cost,
        "accumulation_flops_overhead": flops["accum+gns"] / flops["accum"] - 1 if flops["accum"] else None,
        "split_flops_overhead": flops["plain+split"] / flops["plain"] - 1 if flops["plain"] else None,
        "accumulation_overhead_min": best["accum+gns"] / best["accum"] - 1,
        "accumulation_overhead": med["accum+gns"] / med["accum"] - 1,
        "accumulation_overhead_nobarrier": med["accum+gns_nobarrier"] / med["accum_nobarrier"] - 1,
        "barrier_cost": med["accum"] / med["accum_nobarrier"] - 1,
        "split_measured_step_overhead": split_excess,
        "split_amortised_overhead": {str(c): split_excess / c for c in CADENCES},
        "bit_identical_params": {f"{a} vs {b}": v for (a, b), v in identical.items()},
        "note": "ratios from medians of interleaved blocks in the same run; wall clock"
                + ("; 2-core CPU shared with other jobs" if jax.default_backend() == "cpu" else ""),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = args.machine or jax.default_backend()
    out = RESULTS / f"gns_{name}.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, out)
    print(json.dumps({k: result[k] for k in ("median_step_s", "accumulation_overhead", "barrier_cost",
                                             "accumulation_overhead_min", "accumulation_flops_overhead",
                                             "split_flops_overhead",
                                             "split_measured_step_overhead", "bit_identical_params")}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
