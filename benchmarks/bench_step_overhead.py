"""What the trainer pays per token at the tiny shapes studies use (issue 15, item 7).

(a) Our compiled step against a plain Flax/Optax step of the same model, in one process,
    interleaved: for each shape, rounds of ``--block`` steps of every variant in rotating order
    (device-resident batches, one ``block_until_ready`` per block), the ratio plain/variant of
    each round's block times, reported as median, interquartile range and extremes. Variants:
    - ``plain``: ``optax.adamw`` (constant lr, no clipping), ``jax.jit`` with the state donated;
    - ``plain_clip``: ``optax.chain(clip_by_global_norm, adamw(warmup schedule))``, the optimizer
      our study config runs;
    - ``ours``: ``scaling.lm.step.compiled(model, step_shape(config, B), mesh).step`` for the
      study config without the noise scale (AdamW, clipping, warmup, one EWA);
    - ``ours_gns``: the same with ``gns: true`` (split batch every 10 steps), called as the loop
      calls it: ``measuring_step`` on steps 0, 10, 20, ..., ``step`` on the others.
(b) A small real sweep of the ``cpu_reference`` kind (the d24 model's group at its smallest data
    size: every batch size and lr of the grid file), in a child process, twice: with an empty compilation
    cache (first run) and with the cache the first left (warm start). Its tokens per second of
    wall time against the bare step's (``ours`` without the noise scale, same shapes, the
    tokens of each batch size at its bare rate), and where the rest went, timed: interpreter
    and imports, compiles (``jax.monitoring`` compile spans, nested ones counted once),
    evaluations (timed around every call of the compiled evaluation, their count), the noise
    scale (steps x the measured extra seconds per step of the gns config called as the loop
    calls it, from bare timings in the same process), run set-up and finish outside the loop,
    sweep bookkeeping outside the runs, and the host loop (the loop's wall time less its steps
    at the bare rate, evaluations, compiles and the noise scale). ``--sparse`` adds a third
    sweep, warm, with the opt-in sparse evaluations (``eval.sparse_every``); ``--lean`` a fourth
    with sparse evaluations and the raw weights evaluated at each run's last evaluation only
    (``eval.raw_weights: last``), and ``--lean-tpp N`` that lean sweep again on the same model's
    group at N tokens per parameter (the same model: the warm cache serves the batch sizes both
    groups train; a batch size only the larger group reaches compiles afresh), to show how the
    ratio moves with the length of the runs.

    python benchmarks/bench_step_overhead.py [--quick] [--sparse] [--lean] [--lean-tpp 20]
        [--out benchmarks/results/step_overhead_cpu.json]

The 2-core machine is shared: every comparison is a ratio measured in one process, interleaved,
with its spread; the load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

T_PROCESS = time.time()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

GRID = REPO / "runs" / "grids" / "cpu_reference.yaml"
SWEEP_MODEL = "d24-L2"  # its group at the smallest data size, every batch size and lr of the grid
SPARSE_EVERY = 8  # the opt-in sparse evaluations of the third and fourth sweeps (eval.sparse_every)
EVAL_MODES = {"dense": {}, "sparse": {"sparse_every": SPARSE_EVERY},
              "lean": {"sparse_every": SPARSE_EVERY, "raw_weights": "last"}}  # the sweeps' eval keys
GNS_EVERY = 10  # the study config's cadence (TrainConfig.gns_every)
# (name, d_model, n_layers, n_heads, seq_len, batch, tokenizer): the issue's three shapes
SHAPES = [("d24-L2-seq64-B8-bytes", 24, 2, 2, 64, 8, "bytes"),
          ("d48-L2-seq64-B32-bytes", 48, 2, 4, 64, 32, "bytes"),
          ("d128-L4-seq128-B16-bpe8k", 128, 4, 4, 128, 16, "default")]
VARIANTS = ("plain", "plain_clip", "ours", "ours_gns")
SLOW_SHAPE = 2048 * 64  # tokens per step x d_model above which a shape gets a third of the rounds


def machine() -> dict:
    import jax

    from scaling.machine import cpu_model, load_average

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
            "jax": jax.__version__, "backend": jax.default_backend(), "load_average": load_average()}


def study_config(d: int, layers: int, heads: int, seq: int, batch: int, tokenizer: str, *, gns: bool,
                 tokens: int = 10_000_000):
    """A cpu_reference-like TrainConfig (clipping, warmup from 0.1 lr, one EWA, beta2 by half-life)."""
    from scaling.lm.config import TrainConfig

    return TrainConfig.from_dict({
        "model": {"d_model": d, "n_layers": layers, "n_heads": heads, "seq_len": seq},
        "data": {"source": "default", "tokenizer": tokenizer, "tokens": tokens},
        "optim": {"lr": 0.01, "clip_norm": 1.0, "warmup_tokens": tokens // 4, "warmup_init_fraction": 0.1,
                  "beta2_half_life_tokens": 65536, "schedule": "constant"},
        "ewa": {"half_lives_tokens": [32768]}, "batch_size": batch, "gns": gns})


def plain_step(model, config, *, clip: bool):
    """A plain Flax/Optax step of ``model``: (params, opt_state), batch -> new state, loss."""
    import jax
    import optax

    o = config.optim
    if clip:
        warm = max(1, config.warmup_steps)
        lr = optax.join_schedules([optax.linear_schedule(o.warmup_init_fraction * o.lr, o.lr, warm),
                                   optax.constant_schedule(o.lr)], [warm])
        tx = optax.chain(optax.clip_by_global_norm(o.clip_norm),
                         optax.adamw(lr, b1=o.beta1, b2=config.beta2, eps=o.eps, weight_decay=o.weight_decay))
    else:
        tx = optax.adamw(o.lr, b1=o.beta1, b2=config.beta2, eps=o.eps, weight_decay=o.weight_decay)

    def loss_fn(params, batch_BxL1):
        logits_BxLxV = model.apply({"params": params}, batch_BxL1[:, :-1])
        return optax.softmax_cross_entropy_with_integer_labels(logits_BxLxV, batch_BxL1[:, 1:]).mean()

    @partial(jax.jit, donate_argnums=(0,))
    def step(state, batch_BxL1):
        params, opt_state = state
        loss, grads = jax.value_and_grad(loss_fn)(params, batch_BxL1)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    from scaling.lm.model import init_params

    params = init_params(model, jax.random.key(0))
    return step, (params, tx.init(params))


def our_step(model, config, mesh):
    """(call(state, batch, i), state): our compiled functions called as the loop calls them."""
    from scaling.lm import mesh as parallel, optim
    from scaling.lm.step import compiled, step_shape

    fns = compiled(model, step_shape(config, config.batch_size), mesh)
    hp = parallel.put_replicated(optim.hparams(config), mesh)
    measures = config.gns

    def call(state, batch, i):
        fn = fns.measuring_step if measures and i % GNS_EVERY == 0 else fns.step
        return fn(state, batch, hp)

    return call, fns.init(0)


def variants_for(shape, mesh) -> dict:
    """name -> [call(state, batch, i) -> (state, metrics), state] for one shape."""
    from scaling.data.dataset import open_dataset
    from scaling.lm.model import build

    _, d, layers, heads, seq, batch, tokenizer = shape
    vocab = open_dataset("default", tokenizer).vocab_size
    off = study_config(d, layers, heads, seq, batch, tokenizer, gns=False)
    model = build(off.model, vocab)
    out = {}
    for name in VARIANTS:
        if name.startswith("plain"):
            step, state = plain_step(model, off, clip=name == "plain_clip")
            out[name] = [lambda s, b, i, step=step: step(s, b), state]
        else:
            call, state = our_step(model, study_config(d, layers, heads, seq, batch, tokenizer, gns=name == "ours_gns"), mesh)
            out[name] = [call, state]
    return out, model.vocab_size


def time_block(entry, batches, start: int, n: int) -> float:
    import jax

    call, state = entry
    t0 = time.perf_counter()
    for i in range(start, start + n):
        state, _ = call(state, batches[i % len(batches)], i)
    jax.block_until_ready(state)
    entry[1] = state
    return time.perf_counter() - t0


def spread(xs: list) -> dict:
    q = statistics.quantiles(xs, n=4) if len(xs) >= 4 else [min(xs), statistics.median(xs), max(xs)]
    return {"median": statistics.median(xs), "q25": q[0], "q75": q[2], "min": min(xs), "max": max(xs), "n": len(xs)}


def compare_steps(rounds: int, block: int) -> list:
    """Part (a): every shape's variants, interleaved in one process."""
    import jax
    import numpy as np

    from scaling.lm import mesh as parallel

    mesh = parallel.data_mesh()
    results = []
    for shape in SHAPES:
        name, d, layers, heads, seq, batch, tokenizer = shape
        entries, vocab = variants_for(shape, mesh)
        rng = np.random.default_rng(0)
        batches = [jax.device_put(rng.integers(0, vocab, size=(batch, seq + 1)).astype(np.int32)) for _ in range(8)]
        for entry in entries.values():  # compile and warm up (GNS_EVERY steps: both programs)
            time_block(entry, batches, 0, GNS_EVERY)
        times = {v: [] for v in VARIANTS}
        step_index = GNS_EVERY
        n_rounds = rounds if batch * seq * d <= SLOW_SHAPE else max(5, rounds // 3)  # d128: ~0.5 s a step
        for r in range(n_rounds):
            order = VARIANTS[r % len(VARIANTS):] + VARIANTS[:r % len(VARIANTS)]
            for v in order:
                times[v].append(time_block(entries[v], batches, step_index, block))
            step_index += block
        tokens = batch * seq * block
        row = {"shape": name, "d_model": d, "n_layers": layers, "n_heads": heads, "seq_len": seq, "batch_size": batch,
               "vocab": vocab, "block_steps": block, "rounds": n_rounds,
               "tokens_per_s_median": {v: tokens / statistics.median(times[v]) for v in VARIANTS},
               "ratio_vs_plain": {v: spread([p / t for p, t in zip(times["plain"], times[v])]) for v in VARIANTS[1:]},
               "ratio_vs_plain_clip": {v: spread([p / t for p, t in zip(times["plain_clip"], times[v])])
                                       for v in ("ours", "ours_gns")},
               "ratio_best_of": {v: min(times["plain"]) / min(times[v]) for v in VARIANTS[1:]}}
        results.append(row)
        print(f"{name}: ours/plain {row['ratio_vs_plain']['ours']['median']:.3f} "
              f"[{row['ratio_vs_plain']['ours']['q25']:.3f}, {row['ratio_vs_plain']['ours']['q75']:.3f}], "
              f"ours_gns/plain {row['ratio_vs_plain']['ours_gns']['median']:.3f}", flush=True)
        del entries
    return results


# --- part (b): a small real sweep, instrumented, in a child process ---------------------------

def sweep_grid(tmp: Path, mode: str, tpp: float = 0) -> Path:
    """The grid file's SWEEP_MODEL group at ``tpp`` tokens per parameter (0: its smallest), with
    the evaluation keys of ``mode`` (EVAL_MODES)."""
    import yaml

    grid = yaml.safe_load(GRID.read_text())
    model = next(m for m in grid["models"] if m["name"] == SWEEP_MODEL)
    tpp = tpp or min(model.get("tokens_per_param", grid["tokens_per_param"]))
    grid["models"] = [{**model, "tokens_per_param": [tpp]}]
    grid["name"] = "bench_step_overhead"
    grid["base"].setdefault("eval", {}).update(EVAL_MODES[mode])
    path = tmp / f"grid_{mode}_{tpp:g}.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


class Probe:
    """Timers installed around the trainer's phases (wrappers only; nothing in the trainer changes)."""

    COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration", "/jax/core/compile/jaxpr_to_mlir_module_duration",
                      "/jax/core/compile/backend_compile_duration")

    def __init__(self):
        import jax

        from scaling.lm import loop as loop_lib, step as step_lib, train as train_lib

        self.t = {"compile": 0.0, "eval": 0.0, "eval_compile": 0.0, "loop": 0.0, "loop_compile": 0.0,
                  "runs": 0.0, "setup": 0.0}
        self.counts = {"evals": 0, "compiles": 0, "runs": 0, "steps": 0}
        self.tokens_by_batch: dict = {}
        self.steps_by_batch: dict = {}
        self.measured_by_batch: dict = {}  # steps s (0-based) with s % gns_every == 0
        self.by_function: dict = {}
        self.spans: list = []  # (start, end, event, function) of every compile phase
        jax.monitoring.register_event_time_span_listener(self._compile_span)
        orig_compiled, orig_run, orig_train_runs, orig_setup = (step_lib.compiled, loop_lib.Loop.run,
                                                                train_lib.train_runs, train_lib.setup)
        probe = self

        def compiled(*a, **kw):
            fns = orig_compiled(*a, **kw)
            evaluations = ("evaluate", "evaluate_raw", "evaluate_averaged")
            return fns._replace(**{k: probe._timed_eval(getattr(fns, k)) for k in evaluations
                                   if getattr(fns, k) is not None})

        def run(loop, state, start):
            c0, t0 = probe.t["compile"], time.perf_counter()
            try:
                return orig_run(loop, state, start)
            finally:
                probe.t["loop"] += time.perf_counter() - t0
                probe.t["loop_compile"] += probe.t["compile"] - c0
                for r in loop.records:
                    steps, b = r.final_step - r.start, r.config.batch_size
                    probe.counts["steps"] += steps
                    probe.steps_by_batch[b] = probe.steps_by_batch.get(b, 0) + steps
                    probe.measured_by_batch[b] = probe.measured_by_batch.get(b, 0) + (
                        len(range(-(-r.start // r.config.gns_every) * r.config.gns_every, r.final_step,
                                  r.config.gns_every)) if r.config.gns else 0)
                    probe.tokens_by_batch[b] = probe.tokens_by_batch.get(b, 0) + steps * r.config.tokens_per_step

        def train_runs(*a, **kw):
            t0 = time.perf_counter()
            try:
                return orig_train_runs(*a, **kw)
            finally:
                probe.t["runs"] += time.perf_counter() - t0
                probe.counts["runs"] += len(a[0])

        def setup(*a, **kw):
            t0 = time.perf_counter()
            try:
                return orig_setup(*a, **kw)
            finally:
                probe.t["setup"] += time.perf_counter() - t0

        step_lib.compiled, train_lib.compiled = compiled, compiled
        loop_lib.Loop.run, train_lib.train_runs, train_lib.setup = run, train_runs, setup

    def freeze(self) -> None:
        import copy

        self.t, self.counts, self.by_function = copy.deepcopy((self.t, self.counts, self.by_function))
        self._frozen = True

    def _compile_span(self, event: str, start: float, end: float, fun_name: str = "", **_) -> None:
        """Compile phases nest (an inner jit traces inside the outer trace): only the time not
        already inside a recorded span counts."""
        if event not in self.COMPILE_EVENTS or getattr(self, "_frozen", False):
            return
        covered = 0.0
        for s0, s1, *_ in self.spans:
            if s0 >= start and s1 <= end:
                covered += s1 - s0  # an inner phase recorded first, inside this one
        self.spans = [x for x in self.spans if not (x[0] >= start and x[1] <= end)] + [(start, end, event, fun_name)]
        self.t["compile"] += (end - start) - covered
        self.counts["compiles"] += event.endswith("backend_compile_duration")
        key = f"{event.rsplit('/', 1)[-1]}:{fun_name}"
        self.by_function[key] = self.by_function.get(key, 0.0) + (end - start) - covered

    def _timed_eval(self, fn):
        import numpy as np

        def evaluate(*a):
            c0, t0 = self.t["compile"], time.perf_counter()
            out = np.asarray(fn(*a))  # the loop fetches the losses at once anyway
            self.t["eval"] += time.perf_counter() - t0
            self.t["eval_compile"] += self.t["compile"] - c0
            self.counts["evals"] += 1
            return out

        return evaluate


def bare_rates(batch_sizes: list, *, rounds: int, block: int) -> dict:
    """Per batch size of the sweep, interleaved: tokens/s of our step without the noise scale
    (``bare``), and the seconds per step of the gns config called as the loop calls it (``mix``:
    blocks of whole cadences, the measurement on every GNS_EVERY-th step)."""
    import jax
    import numpy as np
    import yaml

    from scaling.data.dataset import open_dataset
    from scaling.lm import mesh as parallel
    from scaling.lm.model import build

    grid = yaml.safe_load(GRID.read_text())
    m = next(x for x in grid["models"] if x["name"] == SWEEP_MODEL)
    seq = grid["base"]["model"]["seq_len"]
    mesh = parallel.data_mesh()
    vocab = open_dataset("default", "bytes").vocab_size
    block = max(GNS_EVERY, block - block % GNS_EVERY)
    out = {}
    for b in batch_sizes:
        cfg = partial(study_config, m["d_model"], m["n_layers"], m["n_heads"], seq, b, "bytes")
        model = build(cfg(gns=False).model, vocab)
        entries = {"bare": list(our_step(model, cfg(gns=False), mesh)), "mix": list(our_step(model, cfg(gns=True), mesh))}
        rng = np.random.default_rng(b)
        batches = [jax.device_put(rng.integers(0, model.vocab_size, size=(b, seq + 1)).astype(np.int32))
                   for _ in range(4)]
        times = {k: [] for k in entries}
        for k, e in entries.items():
            time_block(e, batches, 0, GNS_EVERY)
        done = GNS_EVERY
        for _ in range(rounds):
            for k, e in entries.items():
                times[k].append(time_block(e, batches, done, block) / block)
            done += block
        med = {k: statistics.median(v) for k, v in times.items()}
        out[b] = {"bare_tokens_per_s": b * seq / med["bare"], "bare_step_s": med["bare"], "gns_mix_step_s": med["mix"],
                  "gns_extra_per_step_s": med["mix"] - med["bare"],
                  "gns_extra_per_step_spread": spread([x / y - 1 for x, y in zip(times["mix"], times["bare"])])}
    return out


def child(out_json: Path, cache: Path, runs_dir: Path, rounds: int, block: int, mode: str, tpp: float) -> None:
    """One sweep process: imports, the instrumented sweep, then the bare rates of its shapes."""
    t_start = time.time()
    import jax  # noqa: F401

    from scaling.lm.compile_cache import enable
    from scaling.sweep import run_sweep

    t_imported = time.time()
    enable(cache)
    probe = Probe()
    grid_path = sweep_grid(runs_dir.parent, mode, tpp)
    t0 = time.perf_counter()
    run_sweep(grid_path, workers=1, out=runs_dir, quiet=True, print_fn=lambda *a: None)
    sweep_s = time.perf_counter() - t0
    probe.freeze()  # the bare timings below compile programs of their own
    summaries = [json.loads(p.read_text()) for p in runs_dir.glob("*/summary.json")]
    trained = [s for s in summaries if s.get("final_step")]
    bare = bare_rates(sorted(probe.tokens_by_batch), rounds=rounds, block=block)
    tokens = sum(probe.tokens_by_batch.values())
    bare_step_s = sum(t / bare[b]["bare_tokens_per_s"] for b, t in probe.tokens_by_batch.items())
    gns_s = sum(n * bare[b]["gns_extra_per_step_s"] for b, n in probe.steps_by_batch.items())
    t = probe.t
    evals_s = t["eval"] - t["eval_compile"]
    loop_compile_ex_eval = t["loop_compile"] - t["eval_compile"]
    host_loop = t["loop"] - bare_step_s - gns_s - t["eval"] - loop_compile_ex_eval
    wall = (t_imported - t_start) + sweep_s
    result = {
        "runs_trained": len(trained), "runs_recorded": len(summaries), "tokens_trained": tokens,
        "tokens_by_batch": probe.tokens_by_batch, "statuses": sorted({s["status"] for s in summaries}),
        "wall_s": wall, "sweep_s": sweep_s, "tokens_per_s": tokens / wall,
        "bare_tokens_per_s": tokens / bare_step_s, "ratio_to_bare": bare_step_s / wall,
        "bare_by_batch": bare, "counts": probe.counts | {"measured_steps": sum(probe.measured_by_batch.values())},
        "breakdown_s": {
            "bare_steps": bare_step_s,
            "interpreter_and_imports": t_imported - t_start + (t_start - float(os.environ["BENCH_SPAWN"])),
            "compile": t["compile"],
            "evaluations": evals_s,
            "noise_scale": gns_s,
            "run_setup_and_finish": t["runs"] - t["loop"] - (t["compile"] - t["loop_compile"]),
            "of_which_setup": t["setup"],
            "sweep_bookkeeping": sweep_s - t["runs"],
            "host_loop": host_loop,
        },
        "compile_by_function_s": dict(sorted(probe.by_function.items(), key=lambda kv: -kv[1])[:25]),
        "steps_to_target": {f"{s['batch_size']}@{s['lr']:g}": s.get("steps_to_target") for s in summaries},
        "final_steps": {f"{s['batch_size']}@{s['lr']:g}": s.get("final_step") for s in summaries},
    }
    out_json.write_text(json.dumps(result, indent=1, sort_keys=True))


def run_child(tmp: Path, name: str, cache: Path, rounds: int, block: int, mode: str = "dense", tpp: float = 0) -> dict:
    out = tmp / f"{name}.json"
    env = dict(os.environ, JAX_PLATFORMS=os.environ.get("JAX_PLATFORMS", "cpu"), BENCH_SPAWN=repr(time.time()))
    t0 = time.time()
    subprocess.run([sys.executable, __file__, "--child", str(out), str(cache), str(tmp / f"runs_{name}"),
                    str(rounds), str(block), mode, repr(tpp)], check=True, env=env, cwd=REPO)
    result = json.loads(out.read_text())
    result["process_wall_s"] = time.time() - t0
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "step_overhead_cpu.json"))
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--block", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="few rounds (a smoke test of the benchmark)")
    p.add_argument("--skip-steps", action="store_true")
    p.add_argument("--skip-sweep", action="store_true")
    p.add_argument("--sparse", action="store_true", help=f"a third sweep with eval.sparse_every {SPARSE_EVERY}")
    p.add_argument("--lean", action="store_true",
                   help=f"a fourth sweep with eval.sparse_every {SPARSE_EVERY} and eval.raw_weights last")
    p.add_argument("--lean-tpp", type=float, default=0,
                   help="the lean sweep again on the group at this many tokens per parameter")
    p.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        child(Path(a.child[0]), Path(a.child[1]), Path(a.child[2]), int(a.child[3]), int(a.child[4]), a.child[5],
              float(a.child[6]))
        return 0
    rounds = 3 if a.quick else a.rounds
    result = {"benchmark": "our compiled step vs a plain Flax/Optax step of the same model (same process, "
                           "interleaved), and a small cpu_reference-kind sweep's tokens/s vs its bare step's",
              "machine": machine(), "method": __doc__}
    if not a.skip_steps:
        result["steps"] = compare_steps(rounds, a.block)
    if not a.skip_sweep:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            cache = tmp / "jax_cache"
            result["sweep"] = {"grid": f"runs/grids/cpu_reference.yaml, model {SWEEP_MODEL} at its smallest "
                                       "tokens_per_param (every batch size and lr of the grid, protocol grid)",
                               "first_run": run_child(tmp, "cold", cache, rounds, a.block),
                               "warm_cache": run_child(tmp, "warm", cache, rounds, a.block)}
            if a.sparse:
                result["sweep"]["warm_cache_sparse_evals"] = run_child(tmp, "sparse", cache, rounds, a.block, "sparse")
            if a.lean:
                result["sweep"]["warm_cache_lean_evals"] = run_child(tmp, "lean", cache, rounds, a.block, "lean")
            if a.lean_tpp:
                key = f"warm_cache_lean_evals_tpp{a.lean_tpp:g}"
                result["sweep"][key] = run_child(tmp, key, cache, rounds, a.block, "lean", a.lean_tpp)
            if a.sparse or a.lean or a.lean_tpp:
                result["sweep"]["sparse_every"] = SPARSE_EVERY
        for k in [k for k in result["sweep"] if isinstance(result["sweep"][k], dict)]:
            s = result["sweep"][k]
            print(f"sweep ({k}): {s['tokens_per_s']:.0f} tokens/s, bare {s['bare_tokens_per_s']:.0f}: "
                  f"ratio {s['ratio_to_bare']:.3f}; " + ", ".join(f"{n} {v:.1f}s" for n, v in s["breakdown_s"].items()))
    result["machine"]["load_average_after"] = machine()["load_average"]
    from scaling.store import atomic_write_json

    atomic_write_json(Path(a.out), result)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
