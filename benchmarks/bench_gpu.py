"""MFU, peak memory and the largest batch without accumulation of the LM trainer's step on a GPU (issue #9).

For the paper's 85M model (d_model 768, 12 layers, 12 heads, seq_len 512, vocab 50304; bf16
compute, fp32 parameters and optimizer state; Zhang et al. 2024, Sec. 3) this times the step
every run uses -- ``scaling.lm.step.compiled(...).step`` (AdamW, EWA, donated state), compiled
ahead of time with ``.lower(...).compile()`` so that compile time, XLA's memory analysis and
the step time are separate -- on random token batches, for each batch size in a list:

- step time: the median over ``repeats`` windows of K back-to-back steps (the host blocks once
  per window, never per step) divided by K, after warm-up steps;
- tokens/s, model FLOP/s = ``scaling.lm.model.flops_per_token`` (6 N + 6 D V + 12 L D T; PaLM,
  Chowdhery et al. 2022, App. B) x tokens/s, and MFU = model FLOP/s / (the bf16 square-matmul
  peak measured in the same process x devices);
- memory: XLA's per-program analysis of the compiled step and the device allocator's
  ``peak_bytes_in_use`` (cumulative over the process: batches run in ascending order);
- out of memory (RESOURCE_EXHAUSTED) is caught per batch and recorded; the batch is then retried
  with gradient accumulation (microbatch halved until it fits), recorded as needing microbatches;
- ``whole_logits_in_step``: whether the step's StableHLO holds a [microbatch, seq_len, V] array,
  the whole logits, which ``--loss-chunk`` (``model.loss_chunk``, ``scaling.lm.loss``) avoids
  once the step's loss uses it.

Then the largest batch that runs without accumulation: doubling from the largest one known to
fit until one runs out of memory (or ``--search-max``), then bisection to ``--search-granularity``.
``--time-budget-s`` stops before an attempt that would not fit in the time left; what was done
is recorded (``complete`` false). The JSON is rewritten (atomically) after every attempt, so a
run killed at a device time limit still leaves its finished rows.

    python3 benchmarks/bench_gpu.py     # on a GPU: 85M, batches 64 256 1024, then the search (< 8 min)
    bash benchmarks/gpu_bench.sh OUTDIR  # the whole GPU programme of issue #19, this script included
    python3 benchmarks/bench_gpu.py --attention xla --batches 256 --no-search \
        --out benchmarks/results/gpu_mfu_<device>_xla_attention.json   # XLA attention, for comparison
    python benchmarks/bench_gpu.py --quick --out /tmp/x.json   # CPU smoke test of the same path (< 60 s)

Attention defaults to cuDNN's fused kernel on a GPU (``model.attention: cudnn``); with "auto"
this JAX version picks XLA's unfused attention. If cuDNN fails to compile, the batch is rerun
with XLA's and ``attention_fallback`` says so.

No GPU numbers without a GPU: writing under benchmarks/results/ on a non-GPU backend is refused
(exit 2) unless ``--quick`` or ``--allow-cpu`` is given.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import re
import shlex
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a plain script from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from scaling.lm import mesh as parallel, optim  # noqa: E402
from scaling.lm.config import TrainConfig  # noqa: E402
from scaling.errors import ScalingError  # noqa: E402
from scaling.machine import cpu_model, git_state, load_average, package_versions, run_command  # noqa: E402
from scaling.lm.model import build, flops_per_token  # noqa: E402
from scaling.store import atomic_write_json  # noqa: E402
from scaling.lm.compile_cache import enable as enable_compile_cache  # noqa: E402
from scaling.lm.step import compiled, step_shape  # noqa: E402

RESULTS_DIR = REPO / "benchmarks" / "results"
GPU_PLATFORMS = ("gpu", "cuda", "rocm")

# The CBS paper's smallest model (Zhang et al. 2024, Table 1 / docs/design.md): 85M non-embedding params.
PAPER_85M = {"d_model": 768, "n_layers": 12, "n_heads": 12, "seq_len": 512, "vocab": 50304}
QUICK_MODEL = {"d_model": 64, "n_layers": 2, "n_heads": 4, "seq_len": 64, "vocab": 257}  # byte vocabulary
DEFAULT_BATCHES = (64, 256, 1024)
QUICK_BATCHES = (4, 8)
MFU_GOAL = 0.45  # issue #9: >= 45% MFU at batch 256
MFU_GOAL_BATCH = 256

DEFAULT_MATMUL_N = (8192, 16384)  # square bf16 matmuls; the fastest is the peak
QUICK_MATMUL_N = (256,)
DEFAULT_WINDOW_S, QUICK_WINDOW_S = 2.0, 0.2  # seconds per timed window (K steps, one host block)
DEFAULT_REPEATS, QUICK_REPEATS = 5, 3  # timed windows per batch; the median is reported
WARMUP_STEPS = 2  # steps after compile before timing (allocation, autotuning)
PROBE_STEPS = 2  # steps a search probe runs (memory is allocated on the first)
DEFAULT_BUDGET_S = 450.0  # < 8 minutes on an H100, inside a 10-minute device command
DEFAULT_SEARCH_MAX, QUICK_SEARCH_MAX = 8192, 16
DEFAULT_GRANULARITY, QUICK_GRANULARITY = 64, 2
FIRST_COMPILE_GUESS_S = 90.0  # cost estimate of an attempt before any compile was timed
N_EWA = 1  # one EWA decay, as the paper's runs keep

# Dense bf16 tensor-core peaks from NVIDIA's data sheets (TFLOP/s, without sparsity), for a
# secondary MFU only; the primary MFU uses the matmul peak measured in the same process.
SPEC_BF16_TFLOPS = {"H100 PCIe": 756.0, "H100 NVL": 835.0, "H100": 989.4, "H200 NVL": 835.0, "H200": 989.4,
                    "A100": 312.0, "GH200": 989.4}


class OutOfMemory(Exception):
    """An attempt ran out of device memory (or past --simulate-memory-limit-bytes)."""


def is_oom(err: BaseException) -> bool:
    text = str(err)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


@dataclass(frozen=True)
class Model:
    d_model: int
    n_layers: int
    n_heads: int
    seq_len: int
    vocab: int  # the tokenizer's vocabulary; the model pads it as the trainer does
    dtype: str = "bfloat16"
    attention: str = "xla"
    loss_chunk: Optional[int] = None  # model.loss_chunk: cross-entropy in chunks of this many positions


def train_config(m: Model, batch: int, micro: int) -> TrainConfig:
    """The TrainConfig of one timed step (the optimizer hparams are the trainer's defaults)."""
    return TrainConfig.from_dict({
        "model": {"d_model": m.d_model, "n_layers": m.n_layers, "n_heads": m.n_heads, "seq_len": m.seq_len,
                  "dtype": m.dtype, "attention": m.attention, "loss_chunk": m.loss_chunk},
        "data": {"tokens": 1000 * batch * m.seq_len}, "batch_size": batch, "microbatch_size": micro,
        "ewa": {"decays": [0.999] * N_EWA}})


class Clock:
    """Wall time left of --time-budget-s, and the cost of the attempts seen so far."""

    def __init__(self, budget_s: float):
        self.start, self.budget = time.perf_counter(), budget_s
        self.compile_s: list[float] = []

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def allows(self, extra_s: float) -> bool:
        guess = max(self.compile_s) if self.compile_s else FIRST_COMPILE_GUESS_S
        return self.elapsed() + guess + extra_s <= self.budget


# --- measurements -------------------------------------------------------------------------------
def windows(call, block, *, window_s: float, repeats: int, first_s: float) -> tuple[float, int, list]:
    """(median seconds per call, calls per window, per-window seconds per call).

    ``call()`` dispatches one call; ``block()`` waits for everything dispatched. K calls per
    window so that a window lasts about ``window_s`` (from the warm-up's ``first_s``).
    """
    k = max(1, math.ceil(window_s / max(first_s, 1e-6)))
    per_call = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(k):
            call()
        block()
        per_call.append((time.perf_counter() - t) / k)
    return statistics.median(per_call), k, per_call


def matmul_peak(n: int, *, window_s: float, repeats: int) -> dict:
    """FLOP/s of a square n x n x n bf16 matmul (2 n^3 FLOPs) on the default device."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.bfloat16)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.bfloat16)
    f = jax.jit(jnp.dot)
    for _ in range(WARMUP_STEPS):
        f(a, b).block_until_ready()
    t = time.perf_counter()
    f(a, b).block_until_ready()
    first = time.perf_counter() - t
    last = [None]  # only the newest product is kept: the device runs calls in order

    def call():
        last[0] = f(a, b)

    med, k, per = windows(call, lambda: last[0].block_until_ready(), window_s=window_s, repeats=repeats,
                          first_s=first)
    return {"n": n, "dtype": "bfloat16", "seconds": med, "calls_per_window": k, "flops_per_s": 2 * n ** 3 / med,
            "window_seconds_per_call": per}


def memory_analysis(exe) -> dict:
    """XLA's buffer assignment of the compiled step (bytes); program_bytes = args + out - alias + temp."""
    try:
        m = exe.memory_analysis()
    except Exception as e:  # noqa: BLE001 -- not every backend implements it
        return {"unavailable": f"{type(e).__name__}: {e}"}
    if m is None:
        return {"unavailable": "memory_analysis() returned None"}
    keys = ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes", "temp_size_in_bytes",
            "generated_code_size_in_bytes", "peak_memory_in_bytes")
    out = {k: int(getattr(m, k)) for k in keys if hasattr(m, k)}
    out["program_bytes"] = (out.get("argument_size_in_bytes", 0) + out.get("output_size_in_bytes", 0)
                            - out.get("alias_size_in_bytes", 0) + out.get("temp_size_in_bytes", 0))
    return out


def holds_whole_logits(lowered, rows: int, seq_len: int, vocab: int) -> bool:
    """Whether the step's StableHLO (before XLA's optimisations) has a [rows, seq_len, vocab]
    array: the whole logits of a microbatch, which ``model.loss_chunk`` exists to avoid."""
    return re.search(rf"tensor<{rows}x{seq_len}x{vocab}x(f32|bf16)>", lowered.as_text()) is not None


def device_memory() -> dict:
    """The allocator's counters of device 0, or a reason why there are none."""
    stats = jax.devices()[0].memory_stats()
    if not stats:
        return {"peak_bytes_in_use": None,
                "reason": f"device.memory_stats() is empty on {jax.default_backend()}"}
    return {k: stats.get(k) for k in ("peak_bytes_in_use", "bytes_in_use", "bytes_limit", "largest_alloc_size")}


def _free(*trees) -> None:
    for tree in trees:
        for leaf in jax.tree_util.tree_leaves(tree):
            try:
                leaf.delete()
            except Exception:  # noqa: BLE001 -- already donated or deleted
                pass
    gc.collect()


_EXECUTABLES: dict[tuple, tuple] = {}  # (model, batch, micro, devices) -> (compiled step, compile seconds)


@dataclass
class Setup:
    """Everything one step call needs: the trainer's functions, a fresh state, a random batch."""

    config: TrainConfig
    vocab_padded: int
    exe: object  # the AOT-compiled trainer step
    compile_s: float
    compile_reused: bool
    whole_logits: bool  # the step holds a [microbatch, seq_len, V] logits array
    state: object
    tokens: object
    hp: dict


def setup(m: Model, batch: int, micro: int) -> Setup:
    """The trainer's jitted step for these shapes (compiled ahead of time once per process),
    its initial state and a batch of uniform random tokens [batch, seq_len + 1]."""
    mesh = parallel.data_mesh()
    config = train_config(m, batch, micro)
    model = build(config.model, m.vocab)
    fns = compiled(model, step_shape(config, micro), mesh)
    state = fns.init(np.int32(0))
    hp = parallel.put_replicated(optim.hparams(config), mesh)
    rows = np.random.default_rng(batch).integers(0, m.vocab, size=(batch, m.seq_len + 1), dtype=np.int32)
    tokens = jax.device_put(rows, parallel.batch_sharding(mesh))
    key = (m, batch, micro, tuple(d.id for d in mesh.devices.flat))
    reused = key in _EXECUTABLES
    if not reused:
        t = time.perf_counter()
        lowered = fns.step.lower(state, tokens, hp)
        exe = lowered.compile()
        _EXECUTABLES[key] = (exe, time.perf_counter() - t,
                             holds_whole_logits(lowered, micro, m.seq_len, model.vocab_size))
    exe, compile_s, whole = _EXECUTABLES[key]
    return Setup(config, model.vocab_size, exe, compile_s, reused, whole, state, tokens, hp)


def program_memory(m: Model, batch: int, micro: int) -> dict:
    """XLA's memory analysis of the step for ``batch``/``micro`` (compiles it; reused by ``attempt``)."""
    s = setup(m, batch, micro)
    _free(s.state, s.tokens)
    return memory_analysis(s.exe)


def attempt(m: Model, batch: int, micro: int, *, timed: bool, window_s: float, repeats: int,
            memory_limit: Optional[int]) -> dict:
    """Compile and run the trainer's step at ``batch`` (``micro`` per microbatch); raises OutOfMemory."""
    s = None
    holder = {"state": None, "metrics": None}
    try:
        s = setup(m, batch, micro)
        exe, tokens, hp = s.exe, s.tokens, s.hp
        mem = memory_analysis(exe)
        if memory_limit is not None and mem.get("program_bytes", 0) > memory_limit:
            raise OutOfMemory(f"simulated: program_bytes {mem['program_bytes']} > --simulate-memory-limit-bytes "
                              f"{memory_limit}")
        holder["state"], s.state = s.state, None  # donated to the first step

        def call():
            holder["state"], holder["metrics"] = exe(holder["state"], tokens, hp)

        def block():
            jax.block_until_ready((holder["state"], holder["metrics"]))

        t = time.perf_counter()
        for _ in range(WARMUP_STEPS if timed else PROBE_STEPS):
            call()
            block()
        first = (time.perf_counter() - t) / (WARMUP_STEPS if timed else PROBE_STEPS)
        out = {"batch_size": batch, "microbatch_size": micro, "n_micro": batch // micro,
               "needed_microbatching": micro < batch, "compile_s": s.compile_s, "compile_reused": s.compile_reused,
               "whole_logits_in_step": s.whole_logits, "memory_analysis": mem}
        if timed:
            med, k, per = windows(call, block, window_s=window_s, repeats=repeats, first_s=first)
            out.update(step_s=med, steps_per_window=k, window_step_s=per, windows=repeats)
        else:
            out.update(step_s=first, steps_per_window=None, note="search probe: mean of the steps after compile")
        loss = float(holder["metrics"]["train_loss"])
        fpt = flops_per_token(s.config.model, s.vocab_padded, m.seq_len)
        tok_s = batch * m.seq_len / out["step_s"]
        out.update(tokens_per_s=tok_s, flops_per_token=fpt, model_flops_per_s=fpt * tok_s, train_loss=loss,
                   loss_finite=math.isfinite(loss), vocab_padded=s.vocab_padded,
                   device_memory=device_memory())
        return out
    except Exception as e:
        if isinstance(e, OutOfMemory) or is_oom(e):
            raise OutOfMemory(str(e).splitlines()[0][:500]) from None
        raise
    finally:
        if s is not None:
            _free(s.state, s.tokens)
        _free(holder["state"], holder["metrics"])


def run_batch(m: Model, batch: int, *, n_dev: int, oom_floor: Optional[int], accumulate: bool, clock: Clock,
              timing: dict, memory_limit: Optional[int], on_attempt) -> dict:
    """One requested batch size: no accumulation first; on OOM, microbatches halved until one fits.

    Microbatches at or above ``oom_floor`` (the smallest batch seen to run out of memory without
    accumulation) are skipped: they would hold at least as many activations.
    """
    record = {"batch_size": batch, "status": None, "attempts": []}
    micro = batch
    while True:
        if micro % n_dev or batch % micro:
            break
        if micro < batch and oom_floor is not None and micro >= oom_floor:
            micro //= 2
            continue
        if not clock.allows(timing["window_s"] * (timing["repeats"] + WARMUP_STEPS)):
            record["attempts"].append({"microbatch_size": micro, "status": "skipped", "reason": "time budget"})
            record["status"] = "skipped"
            return record
        try:
            r = attempt(m, batch, micro, timed=True, memory_limit=memory_limit, **timing)
        except OutOfMemory as e:
            record["attempts"].append({"microbatch_size": micro, "status": "oom", "error": str(e)})
            on_attempt(batch, micro, ok=False)
            if not accumulate:
                break
            micro //= 2
            continue
        except Exception as e:  # noqa: BLE001 -- recorded (e.g. an attention kernel this GPU lacks)
            error = f"{type(e).__name__}: {str(e).splitlines()[0][:500] if str(e) else ''}"
            record["attempts"].append({"microbatch_size": micro, "status": "error", "error": error})
            record.update(status="error", error=error)
            return record
        if not r["compile_reused"]:
            clock.compile_s.append(r["compile_s"])
        record["attempts"].append({"microbatch_size": micro, "status": "ok"})
        on_attempt(batch, micro, ok=True)
        record.update(r, status="ok")
        return record
    record["status"] = "oom"
    return record


def largest_batch(m: Model, *, known_ok: list, known_oom: list, start: int, max_batch: int, granularity: int,
                  n_dev: int, clock: Clock, memory_limit: Optional[int], on_probe) -> dict:
    """Largest batch without accumulation: doubling from the largest known to fit until out of
    memory or ``max_batch``, then bisection until the gap is at most ``granularity``."""
    lo = max(known_ok, default=0)
    hi = min([b for b in known_oom if b > lo], default=None)
    probes = []

    def probe(b: int) -> bool:
        r = {"batch_size": b}
        try:
            out = attempt(m, b, b, timed=False, window_s=0.0, repeats=0, memory_limit=memory_limit)
            if not out["compile_reused"]:
                clock.compile_s.append(out["compile_s"])
            r.update(status="ok", step_s=out["step_s"], compile_s=out["compile_s"],
                     program_bytes=out["memory_analysis"].get("program_bytes"),
                     peak_bytes_in_use=out["device_memory"].get("peak_bytes_in_use"))
        except OutOfMemory as e:
            r.update(status="oom", error=str(e))
        except Exception as e:  # noqa: BLE001 -- recorded; the search stops (see ``stopped``)
            r.update(status="error", error=f"{type(e).__name__}: {str(e).splitlines()[0][:500] if str(e) else ''}")
        probes.append(r)
        on_probe(probes)
        return r["status"] == "ok"

    stopped = None
    b = lo * 2 if lo else start
    while hi is None and b <= max_batch:
        if not clock.allows(0.0):
            stopped = "time budget"
            break
        if probe(b):
            lo, b = b, b * 2
        elif probes[-1]["status"] == "error":
            stopped = f"error at batch {b}"
        else:
            hi = b
    step = max(granularity, n_dev)
    while stopped is None and hi is not None and hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if mid <= lo:
            break
        if not clock.allows(0.0):
            stopped = "time budget"
            break
        if probe(mid):
            lo = mid
        elif probes[-1]["status"] == "error":
            stopped = f"error at batch {mid}"
        else:
            hi = mid
    return {"largest_batch_without_accumulation": lo or None, "smallest_oom": hi,
            "exact_within": (hi - lo) if hi is not None else None,
            "hit_search_max": hi is None and stopped is None, "search_max": max_batch,
            "granularity": step, "stopped": stopped, "probes": probes}


# --- the machine --------------------------------------------------------------------------------
def cuda_versions() -> dict:
    """CUDA / cuDNN / cuBLAS versions as jaxlib's CUDA plugin reports them (empty without one)."""
    try:
        from jax._src.lib import cuda_versions as cv
    except ImportError:
        return {}
    if cv is None:
        return {}
    out = {}
    for name in sorted(dir(cv)):
        if name.endswith(("_get_version", "_build_version")) or name == "cuda_compute_capability":
            fn = getattr(cv, name)
            try:
                out[name] = fn(0) if name == "cuda_compute_capability" else fn()
            except Exception as e:  # noqa: BLE001
                out[name] = f"{type(e).__name__}: {e}"
    return out


def machine() -> dict:
    dev = jax.devices()[0]
    smi = run_command(["nvidia-smi", "--query-gpu=driver_version,name,memory.total", "--format=csv,noheader"])
    try:
        platform_version = dev.client.platform_version
    except Exception:  # noqa: BLE001
        platform_version = None
    env = {k: v for k, v in os.environ.items()
           if k.startswith(("XLA_", "JAX_", "TF_GPU", "NVIDIA_TF32")) or k in ("CUDA_VISIBLE_DEVICES",)}
    return {
        "device_kind": dev.device_kind, "platform": dev.platform, "backend": jax.default_backend(),
        "n_devices": jax.device_count(), "platform_version": platform_version,
        "nvidia_smi": smi, "driver_version": smi.split(",")[0].strip() if smi else None,
        "packages": package_versions(), "cuda": cuda_versions(),
        "cpu": cpu_model(), "cores": os.cpu_count(), "os": platform.platform(), "python": platform.python_version(),
        "load_average_at_start": load_average(), "env": env, "git": git_state(REPO),
    }


def spec_peak(device_kind: str) -> Optional[float]:
    """Data-sheet dense bf16 FLOP/s for a device kind (longest matching name), else None."""
    hits = [k for k in SPEC_BF16_TFLOPS if k.lower() in device_kind.lower()]
    return SPEC_BF16_TFLOPS[max(hits, key=len)] * 1e12 if hits else None


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


# --- the command --------------------------------------------------------------------------------
def parse(argv) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="result JSON (default benchmarks/results/gpu_mfu_<device-kind>.json)")
    ap.add_argument("--quick", action="store_true", help="tiny model and batches: a CPU smoke test of the same path")
    ap.add_argument("--allow-cpu", action="store_true", help="allow writing under benchmarks/results/ without a GPU")
    ap.add_argument("--batches", help="comma-separated batch sizes (sequences; default 64,256,1024)")
    ap.add_argument("--d-model", type=int)
    ap.add_argument("--n-layers", type=int)
    ap.add_argument("--n-heads", type=int)
    ap.add_argument("--seq-len", type=int)
    ap.add_argument("--vocab", type=int, help="tokenizer vocabulary (padded to a multiple of 64 by the model)")
    ap.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16", help="compute dtype")
    ap.add_argument("--attention", choices=("auto", "xla", "cudnn"),
                    help="jax.nn.dot_product_attention implementation (default: cudnn on GPU, else xla)")
    ap.add_argument("--loss-chunk", type=int,
                    help="model.loss_chunk: cross-entropy over this many sequence positions at a time "
                         "(scaling.lm.loss); default: the whole logits")
    ap.add_argument("--matmul-n", help="comma-separated square bf16 matmul sizes for the peak (default 8192,16384)")
    ap.add_argument("--window-s", type=float, help="seconds per timed window")
    ap.add_argument("--repeats", type=int, help="timed windows per batch (median reported)")
    ap.add_argument("--no-accumulate", action="store_true", help="record OOM without retrying with microbatches")
    ap.add_argument("--no-search", action="store_true", help="skip the largest-batch search")
    ap.add_argument("--search-start", type=int, help="first batch of the doubling search when none is known to fit")
    ap.add_argument("--search-max", type=int, help="largest batch the search tries")
    ap.add_argument("--search-granularity", type=int, help="bisection stops when the gap is this small")
    ap.add_argument("--time-budget-s", type=float, default=DEFAULT_BUDGET_S,
                    help=f"stop starting attempts that would not finish within this (default {DEFAULT_BUDGET_S:g})")
    ap.add_argument("--mem-fraction", type=float,
                    help="set XLA_PYTHON_CLIENT_MEM_FRACTION before the backend starts (default: leave as is)")
    ap.add_argument("--simulate-memory-limit-bytes", type=int,
                    help="treat a compiled step whose XLA program_bytes exceed this as out of memory "
                         "(exercises the OOM path on CPU; recorded in the result)")
    return ap.parse_args(argv)


def _ints(text: Optional[str], default, name: str) -> tuple:
    if text is None:
        return tuple(default)
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ScalingError(f"{name} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) <= 0:
        raise ScalingError(f"{name} must be positive integers, got {text!r}")
    return values


def resolve(args) -> dict:
    """Every setting of the measurement, from the flags, --quick and the backend."""
    base = QUICK_MODEL if args.quick else PAPER_85M
    on_gpu = jax.default_backend() in GPU_PLATFORMS
    pick = lambda flag, quick, full: flag if flag is not None else (quick if args.quick else full)  # noqa: E731
    model = Model(d_model=pick(args.d_model, base["d_model"], base["d_model"]),
                  n_layers=pick(args.n_layers, base["n_layers"], base["n_layers"]),
                  n_heads=pick(args.n_heads, base["n_heads"], base["n_heads"]),
                  seq_len=pick(args.seq_len, base["seq_len"], base["seq_len"]),
                  vocab=pick(args.vocab, base["vocab"], base["vocab"]), dtype=args.dtype,
                  attention=args.attention or ("cudnn" if on_gpu else "xla"), loss_chunk=args.loss_chunk)
    train_config(model, 1, 1)  # validates the model (ScalingError on a bad size)
    batches = _ints(args.batches, QUICK_BATCHES if args.quick else DEFAULT_BATCHES, "--batches")
    settings = {
        "model": model, "batches": tuple(sorted(set(batches))),
        "matmul_n": _ints(args.matmul_n, QUICK_MATMUL_N if args.quick else DEFAULT_MATMUL_N, "--matmul-n"),
        "timing": {"window_s": pick(args.window_s, QUICK_WINDOW_S, DEFAULT_WINDOW_S),
                   "repeats": pick(args.repeats, QUICK_REPEATS, DEFAULT_REPEATS)},
        "search": not args.no_search, "accumulate": not args.no_accumulate,
        "search_start": pick(args.search_start, min(batches), min(batches)),
        "search_max": pick(args.search_max, QUICK_SEARCH_MAX, DEFAULT_SEARCH_MAX),
        "search_granularity": pick(args.search_granularity, QUICK_GRANULARITY, DEFAULT_GRANULARITY),
        "time_budget_s": args.time_budget_s, "simulate_memory_limit_bytes": args.simulate_memory_limit_bytes,
    }
    if settings["timing"]["repeats"] < 1 or settings["timing"]["window_s"] <= 0:
        raise ScalingError("--repeats must be >= 1 and --window-s > 0")
    return settings


def out_path(args) -> Path:
    if args.out:
        return Path(args.out)
    name = slug(jax.devices()[0].device_kind) + ("_quick" if args.quick else "")
    return RESULTS_DIR / f"gpu_mfu_{name}.json"


def check_destination(path: Path, args) -> None:
    """No GPU numbers without a GPU: refuse benchmarks/results/ on a CPU unless --quick/--allow-cpu."""
    if jax.default_backend() in GPU_PLATFORMS or args.quick or args.allow_cpu:
        return
    if path.resolve().is_relative_to(RESULTS_DIR.resolve()):
        raise ScalingError(f"refusing to write {path} on the {jax.default_backend()} backend: benchmarks/results/ "
                           "holds GPU numbers (use --out elsewhere, --quick, or --allow-cpu)")


def summary_table(result: dict) -> str:
    peak = result["matmul_peak_flops_per_s"]
    lines = [f"{result['machine']['device_kind']}: bf16 matmul peak {peak / 1e12:.3g} TFLOP/s (measured)",
             f"{'batch':>6} {'micro':>6} {'status':>8} {'step ms':>9} {'tok/s':>11} {'TFLOP/s':>8} {'MFU':>6} "
             f"{'program GB':>10} {'peak GB':>8}"]
    for r in result["batches"]:
        if r["status"] != "ok":
            lines.append(f"{r['batch_size']:>6} {'-':>6} {r['status']:>8}")
            continue
        gb = lambda x: f"{x / 1e9:.2f}" if isinstance(x, (int, float)) else "-"  # noqa: E731
        lines.append(f"{r['batch_size']:>6} {r['microbatch_size']:>6} {'ok':>8} {1e3 * r['step_s']:>9.2f} "
                     f"{r['tokens_per_s']:>11.0f} {r['model_flops_per_s'] / 1e12:>8.2f} {100 * r['mfu']:>5.1f}% "
                     f"{gb(r['memory_analysis'].get('program_bytes')):>10} "
                     f"{gb(r['device_memory'].get('peak_bytes_in_use')):>8}")
    s = result.get("largest_batch")
    if s:
        lines.append(f"largest batch without accumulation: {s['largest_batch_without_accumulation']} "
                     f"(smallest OOM {s['smallest_oom']}, stopped: {s['stopped']})")
    g = result["mfu_goal"]
    lines.append(f"MFU goal >= {100 * g['mfu']:.0f}% at batch {g['batch_size']}: {g.get('met')}")
    lines.append(f"complete: {result['complete']}  ({result['elapsed_s']:.0f} s)")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse(argv)
    if args.mem_fraction is not None:  # read when the backend starts (the first jax.devices() below)
        os.environ["XLA_PYTHON_CLIENT_MEM_FRACTION"] = str(args.mem_fraction)
    try:
        settings = resolve(args)
        path = out_path(args)
        check_destination(path, args)
    except ScalingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    enable_compile_cache()
    clock = Clock(settings["time_budget_s"])
    m: Model = settings["model"]
    n_dev = jax.device_count()
    argv_list = sys.argv[1:] if argv is None else list(argv)
    result = {
        "benchmark": "bench_gpu", "issue": 9, "complete": False, "elapsed_s": 0.0,
        "command": "python benchmarks/bench_gpu.py " + shlex.join(argv_list), "cwd": os.getcwd(),
        "python_executable": sys.executable,
        "machine": machine(), "quick": args.quick,
        "model": asdict(m), "non_embedding_params": 12 * m.n_layers * m.d_model ** 2,
        "precision": f"{m.dtype} compute, float32 params / AdamW state / EWA ({N_EWA} decay), float32 logits and loss",
        "step": "scaling.lm.step.compiled(...).step (AdamW, EWA, donated state, gns off, constant schedule), "
                "AOT-compiled via .lower().compile()",
        "settings": {k: v for k, v in settings.items() if k != "model"},
        "mfu_definition": "flops_per_token * tokens/s / (bf16 square-matmul peak measured in this process * devices); "
                          "flops_per_token = 6 (N + D V) + 12 n_layers D seq_len (PaLM App. B, causal mask not discounted)",
        "mfu_goal": {"batch_size": MFU_GOAL_BATCH, "mfu": MFU_GOAL},
        "compile_notes": "compile_s is XLA's compile time, or the load time when the persistent compilation cache "
                         "(compilation_cache_dir) already held the program; compile_reused: compiled earlier in "
                         "this process.",
        "memory_notes": "memory_analysis: XLA's buffer assignment of the compiled step (program_bytes = arguments + "
                        "outputs - aliased + temporaries). device_memory.peak_bytes_in_use: the allocator's peak since "
                        "the process started (batches run in ascending order; search probes after them).",
        "compilation_cache_dir": jax.config.jax_compilation_cache_dir,
        "matmul": [], "matmul_peak_flops_per_s": None, "spec_bf16_flops_per_s": spec_peak(jax.devices()[0].device_kind),
        "batches": [], "largest_batch": None, "skipped": [],
    }

    def save():
        result["elapsed_s"] = clock.elapsed()
        atomic_write_json(path, result)

    for n in settings["matmul_n"]:
        try:
            result["matmul"].append(matmul_peak(n, window_s=settings["timing"]["window_s"],
                                                repeats=settings["timing"]["repeats"]))
        except Exception as e:  # noqa: BLE001 -- an OOM here must not lose the rest
            if not is_oom(e):
                raise
            result["matmul"].append({"n": n, "status": "oom", "error": str(e).splitlines()[0][:500]})
    timed_mm = [r["flops_per_s"] for r in result["matmul"] if "flops_per_s" in r]
    if not timed_mm:
        print("error: no matmul peak could be measured", file=sys.stderr)
        return 2
    peak = max(timed_mm)
    result["matmul_peak_flops_per_s"] = peak
    save()

    known_ok: list[int] = []
    known_oom: list[int] = []

    def seen(batch, micro, ok):
        if micro == batch:
            (known_ok if ok else known_oom).append(batch)

    def one(b):
        return run_batch(m, b, n_dev=n_dev, oom_floor=min(known_oom, default=None),
                         accumulate=settings["accumulate"], clock=clock, timing=settings["timing"],
                         memory_limit=settings["simulate_memory_limit_bytes"], on_attempt=seen)

    for b in settings["batches"]:
        rec = one(b)
        if rec["status"] == "error" and m.attention == "cudnn":  # fall back to XLA's attention, say so
            result["attention_fallback"] = {"from": "cudnn", "to": "xla", "batch_size": b, "error": rec["error"]}
            m = replace(m, attention="xla")
            result["model"] = asdict(m)
            rec = one(b)
        if rec["status"] == "error":
            result["skipped"].append(f"batch {b}: {rec['error']}")
        if rec["status"] == "ok":
            rec["mfu"] = rec["model_flops_per_s"] / (peak * n_dev)
            spec = result["spec_bf16_flops_per_s"]
            rec["mfu_vs_spec"] = rec["model_flops_per_s"] / (spec * n_dev) if spec else None
        elif rec["status"] == "skipped":
            result["skipped"].append(f"batch {b}: time budget")
        result["batches"].append(rec)
        save()

    goal = [r for r in result["batches"] if r["batch_size"] == MFU_GOAL_BATCH and r["status"] == "ok"]
    result["mfu_goal"]["met"] = goal[0]["mfu"] >= MFU_GOAL if goal else None
    save()

    if settings["search"]:
        def on_probe(probes):
            result["largest_batch"] = {"probes": probes, "in_progress": True}
            save()

        result["largest_batch"] = largest_batch(
            m, known_ok=known_ok, known_oom=known_oom, start=settings["search_start"],
            max_batch=settings["search_max"], granularity=settings["search_granularity"], n_dev=n_dev, clock=clock,
            memory_limit=settings["simulate_memory_limit_bytes"], on_probe=on_probe)
        if result["largest_batch"]["stopped"]:
            result["skipped"].append(f"largest-batch search: {result['largest_batch']['stopped']}")
    result["complete"] = not result["skipped"]
    save()
    print(summary_table(result), file=sys.stderr)
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
