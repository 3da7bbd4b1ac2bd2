"""One training run: ``train(config, run_dir) -> summary`` (``scaling train CONFIG``).

The loop reads top to bottom (nanodo's ``train_and_evaluate``): open the data, build the model,
fetch the compiled step for these shapes, restore the latest checkpoint if any, then for each
step dispatch the update and only *then* pull the previous step's metrics to the host, so the
device never waits for Python. Evaluations follow ``scaling.lm.evaluation.eval_steps``; the
target crossing is interpolated with ``scaling.target.crossing_step`` on the EWA loss when EWA
is on (the paper's protocol), on the raw loss otherwise.

Compile reuse: the step is a pure function ``(state, batch, hparams) -> (state, metrics)``;
every number a sweep varies is in ``hparams`` (traced), and the jitted functions are cached at
module level by the static shapes (model, batch and microbatch sizes, mesh, number of EWA
decays, schedule shape, gns flag). Runs that differ in lr, betas, warmup, EWA decays, target or
seed reuse one executable; JAX's persistent compilation cache carries it across processes.

Batch semantics (DESIGN.md): ``batch_size`` sequences per step globally; gradients are
accumulated over ``batch_size / microbatch_size`` microbatches inside the step (one update per
step); each batch and microbatch is split over all devices of the data mesh.
"""

from __future__ import annotations

import math
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, Optional

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from scaling.lm import ewa as ewa_lib
from scaling.lm import gns as gns_lib
from scaling import rundir
from scaling.lm import mesh as parallel, optim
from scaling.lm.checkpoint import Checkpointer
from scaling.lm.config import TrainConfig, config_hash
from scaling.errors import ScalingError
from scaling.noise_scale import summarize
from scaling.lm.evaluation import chunk_validation, eval_row, eval_steps, make_eval
from scaling.lm.model import Transformer, build, count_params, flops_per_token, init_params
from scaling.store import truncate_jsonl
from scaling.target import crossing_step

WORKLOAD = "lm"
CHECKPOINT_INTERVAL_S = 300.0  # wall seconds between checkpoints when checkpoint_every_tokens is None
FLUSH_ROWS = 100  # buffered metrics rows before an append to metrics.jsonl
CACHE_SUBDIR = "jax"
GNS_SPLIT_INDIVISIBLE = ("gns without microbatches splits the batch into gns_split equal parts (McCandlish "
                         "et al. 2018, App. A: a second, smaller batch size); batch_size must be divisible "
                         "by gns_split")
GNS_SUMMARY_KEYS = ("b_simple_at_target", "b_simple_mean", "b_simple_crit", "b_simple_final")
MIN_COMPILE_SECS_TO_CACHE = 0.1


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: completed optimizer updates
    params: Any
    opt_state: Any
    ewa: Any  # stacked [n_ewa, ...] averages, or ()
    rng: jax.Array  # uint32 key data, for any randomness a step may need
    gns_ema: gns_lib.EMAState  # EMAs of |G|^2 and tr(Sigma) (scaling.lm.gns); untouched when gns is off


class Compiled(NamedTuple):
    init: Any  # seed -> TrainState (replicated)
    step: Any  # (state, batch, hparams) -> (state, metrics)
    evaluate: Any  # (state, hparams, val, weights) -> [1 + n_ewa] losses


_COMPILED: dict[tuple, Compiled] = {}
_INIT: dict[tuple, Any] = {}  # init depends on the model and n_ewa only


# --- the pure step ----------------------------------------------------------------------------
def loss_fn(model: Transformer, params: Any, batch_BxL1: jax.Array) -> jax.Array:
    """Mean next-token cross-entropy (nats) of windows [B, L+1]."""
    logits_BxLxV = model.apply({"params": params}, batch_BxL1[:, :-1])
    return optax.softmax_cross_entropy_with_integer_labels(logits_BxLxV, batch_BxL1[:, 1:]).mean()


def gradients(model, params, batch_BxL1, *, n_micro: int, gns: bool, micro_sharding=None):
    """(mean loss, mean gradient, SUM over microbatches of |g_micro|^2) over ``n_micro`` microbatches.

    Microbatch j holds rows j, j + n_micro, j + 2 n_micro, ... so that each microbatch keeps
    the device split of the global batch. The mean of equal-size microbatch means equals the
    big-batch mean, so accumulation changes nothing but memory. The summed |g_micro|^2 (raw,
    pre-clip, fp32) is the small-batch statistic of the gradient noise scale (McCandlish et al.
    2018, App. A; ``scaling.lm.gns.from_sq_norms``); 0 unless ``gns``. Each microbatch gradient passes
    through ``gns.isolate`` whether or not ``gns`` is on, so the measurement never changes the
    gradient's rounding: the trajectory is bit-identical with it on or off.
    """
    grad_fn = jax.value_and_grad(partial(loss_fn, model))
    if n_micro == 1:  # no small-batch statistic here; with gns, train_step measures split batches
        loss, grads = grad_fn(params, batch_BxL1)
        return loss, grads, jnp.zeros((), gns_lib.NORM_DTYPE)
    mb = batch_BxL1.shape[0] // n_micro
    micro_MxBxL1 = batch_BxL1.reshape(mb, n_micro, -1).swapaxes(0, 1)
    if micro_sharding is not None:
        micro_MxBxL1 = jax.lax.with_sharding_constraint(micro_MxBxL1, micro_sharding)

    def body(carry, batch):
        loss_sum, grad_sum, sq_sum = carry
        loss, grads = grad_fn(params, batch)
        grads = gns_lib.isolate(grads)
        sq = gns_lib.sq_norm(grads) if gns else jnp.zeros((), gns_lib.NORM_DTYPE)
        return (loss_sum + loss, jax.tree_util.tree_map(jnp.add, grad_sum, grads), sq_sum + sq), None

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    init = (jnp.zeros((), jnp.float32), zeros, jnp.zeros((), gns_lib.NORM_DTYPE))
    (loss_sum, grad_sum, sq_sum), _ = jax.lax.scan(body, init, micro_MxBxL1)
    return loss_sum / n_micro, jax.tree_util.tree_map(lambda g: g / n_micro, grad_sum), sq_sum


def split_measurement(model, params, batch_BxL1, ema: gns_lib.EMAState, *, k: int):
    """One split-batch measurement: (updated EMA, |G_big|^2, mean |G_small|^2).

    For steps with one microbatch (McCandlish et al. 2018, App. A needs two batch sizes): the
    batch is split into ``k`` groups of B/k rows, group j holding rows j, j + k, j + 2k, ... (the
    microbatch layout of ``gradients``), and ``scaling.lm.gns.split_batch_stats`` takes each group's
    gradient in a sequential scan. The gradients feed only the statistics, never the update.
    """
    b_small = batch_BxL1.shape[0] // k
    strided = batch_BxL1.reshape(b_small, k, -1).swapaxes(0, 1).reshape(batch_BxL1.shape)
    stats = gns_lib.split_batch_stats(jax.grad(partial(loss_fn, model)), params, strided, k, b_small)
    g2, trace = gns_lib.estimates(stats)
    return (gns_lib.ema_update(ema, g2, trace, gns_lib.DEFAULT_DECAY),
            jnp.asarray(stats.sq_norm_big, gns_lib.NORM_DTYPE), jnp.asarray(stats.sq_norm_small, gns_lib.NORM_DTYPE))


def train_step(state: TrainState, batch_BxL1: jax.Array, hp: dict, *, model: Transformer, n_micro: int,
               schedule: str, gns: bool, micro_sharding=None, gns_every: int = TrainConfig.gns_every,
               gns_split: int = TrainConfig.gns_split, measure: Optional[bool] = None) -> tuple[TrainState, dict]:
    """One optimizer update; a pure function of (state, batch, hparams).

    With ``gns`` the step also updates the EMAs of the unbiased |G|^2 and tr(Sigma) estimates from
    the microbatch (B_small) and batch (B_big) gradients (McCandlish et al. 2018, App. A; see
    ``scaling.lm.gns``) and reports ``gns_g2``, ``gns_trace``, ``gns_b_simple`` (in sequences) next to
    the raw ``grad_sq`` (|G_big|^2) and ``grad_sq_micro`` (mean |G_small|^2).

    With one microbatch (``n_micro == 1``) there is no small batch in the step, so on steps where
    ``state.step % gns_every == 0`` (a ``lax.cond``: the others pay nothing) the batch is split
    into ``gns_split`` parts whose extra gradients give the statistics (``split_measurement``);
    the EMA advances once per measured step (decay ``gns.DEFAULT_DECAY`` per measurement) and the
    raw ``grad_sq``/``grad_sq_micro`` are NaN on the other steps. The update never sees these
    gradients: the trajectory is bit-identical with ``gns`` on or off. ``measure`` (static) takes
    that decision out of the program (True: measure, False: skip): under ``vmap`` the step is
    batched, so a ``lax.cond`` on it would become a select that pays for the measurement every
    step; ``scaling.lm.many`` compiles both variants and picks one per step on the host.
    """
    loss, grads, sq_sum = gradients(model, state.params, batch_BxL1, n_micro=n_micro, gns=gns,
                                    micro_sharding=micro_sharding)
    params, opt_state, lr, grad_norm = optim.update(grads, state.opt_state, state.params, state.step, hp, schedule)
    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              ewa=ewa_lib.update(state.ewa, params, hp["ewa_decays"]))
    metrics = {"train_loss": loss, "lr": lr, "grad_norm": grad_norm}
    if gns and n_micro == 1:
        def skip(ema):
            nan = jnp.full((), jnp.nan, gns_lib.NORM_DTYPE)
            return ema, nan, nan

        measured = partial(split_measurement, model, state.params, batch_BxL1, k=gns_split)
        if measure is None:
            gns_ema, big, small = jax.lax.cond(state.step % gns_every == 0, measured, skip, state.gns_ema)
        else:
            gns_ema, big, small = (measured if measure else skip)(state.gns_ema)
        new_state = new_state.replace(gns_ema=gns_ema)
        metrics["grad_sq"] = big  # |G_big|^2 over the whole batch (pre-clip); NaN when not measured
        metrics["grad_sq_micro"] = small  # mean |G_small|^2 over the gns_split parts
        metrics.update(gns_lib.metrics(gns_ema))
    elif gns:
        stats = gns_lib.from_sq_norms(sq_sum, grads, n_micro, batch_BxL1.shape[0] // n_micro)
        g2, trace = gns_lib.estimates(stats)
        gns_ema = gns_lib.ema_update(state.gns_ema, g2, trace, gns_lib.DEFAULT_DECAY)
        new_state = new_state.replace(gns_ema=gns_ema)
        metrics["grad_sq"] = stats.sq_norm_big  # |G_big|^2 over the whole batch (pre-clip)
        metrics["grad_sq_micro"] = stats.sq_norm_small  # mean |G_small|^2 over microbatches
        metrics.update(gns_lib.metrics(gns_ema))
    return new_state, metrics


def init_state(seed: jax.Array, *, model: Transformer, n_ewa: int) -> TrainState:
    init_key, rng = jax.random.split(jax.random.key(seed))
    params = init_params(model, init_key)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optim.init_state(params),
                      ewa=ewa_lib.init(params, n_ewa), rng=jax.random.key_data(rng), gns_ema=gns_lib.ema_init())


def compiled(model: Transformer, *, batch_size: int, microbatch_size: int, seq_len: int, n_ewa: int,
             schedule: str, gns: bool, mesh, gns_every: int = TrainConfig.gns_every,
             gns_split: int = TrainConfig.gns_split) -> Compiled:
    """The jitted init/step/eval for these static shapes, built once per process.

    ``gns_every``/``gns_split`` (the split-batch measurement) matter only with gns on and one
    microbatch per step; otherwise they are left out of the cache key.
    """
    n_micro = batch_size // microbatch_size
    split = (gns_every, gns_split) if gns and n_micro == 1 else None
    key = (model.config, model.vocab_size, batch_size, microbatch_size, seq_len, n_ewa, schedule, gns, split,
           tuple(d.id for d in mesh.devices.flat))
    if key not in _COMPILED:
        repl = parallel.replicated(mesh)
        step = partial(train_step, model=model, n_micro=n_micro, schedule=schedule, gns=gns,
                       micro_sharding=parallel.microbatch_sharding(mesh) if n_micro > 1 else None,
                       **({"gns_every": gns_every, "gns_split": gns_split} if split else {}))
        init_key = (model.config, model.vocab_size, n_ewa, key[-1])
        if init_key not in _INIT:
            _INIT[init_key] = jax.jit(partial(init_state, model=model, n_ewa=n_ewa), out_shardings=repl)
        _COMPILED[key] = Compiled(
            init=_INIT[init_key],
            step=jax.jit(step, donate_argnums=(0,), out_shardings=(repl, repl)),
            evaluate=jax.jit(make_eval(model), out_shardings=repl),
        )
    return _COMPILED[key]


# --- setup helpers ----------------------------------------------------------------------------
def enable_compilation_cache() -> None:
    """JAX's persistent compilation cache under $SCALING_CACHE/jax (else ~/.cache/scaling/jax)."""
    if jax.config.jax_compilation_cache_dir:
        return  # the user chose one
    from scaling.data.dataset import cache_root
    path = cache_root() / CACHE_SUBDIR
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECS_TO_CACHE)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def check_config(config: TrainConfig, n_devices: int) -> None:
    """Checks that need more than the config itself (device count); ScalingError on failure."""
    if config.max_tokens is not None and config.max_tokens > config.data.tokens and config.target_loss is None:
        raise ScalingError(f"max_tokens {config.max_tokens} exceeds data.tokens {config.data.tokens}: "
                           "training beyond D needs a target_loss")
    if config.total_steps < 1:
        raise ScalingError(f"the run has no step: token cap {config.token_cap} < {config.tokens_per_step} tokens per step")
    if config.microbatch_memory_gb is None:
        parallel.check_divisible(config.batch_size, config.microbatch_size or config.batch_size, n_devices)
        check_gns(config, config.microbatch_size or config.batch_size)


def check_gns(config: TrainConfig, micro: int) -> None:
    """The noise scale needs two batch sizes: microbatches, or a batch split into ``gns_split``
    equal parts on measured steps (then batch_size % gns_split == 0; ScalingError otherwise)."""
    if config.gns and micro >= config.batch_size and config.batch_size % config.gns_split:
        raise ScalingError(f"{GNS_SPLIT_INDIVISIBLE} (batch_size {config.batch_size}, gns_split {config.gns_split})")


def gns_method(config: TrainConfig, micro: int) -> Optional[str]:
    """How the run measures the noise scale, recorded in config.json (None: not measured)."""
    if not config.gns:
        return None
    if micro < config.batch_size:
        return f"microbatches: {config.batch_size // micro} x {micro} every step"
    return (f"split batch: {config.gns_split} x {config.batch_size // config.gns_split} extra gradients "
            f"every {config.gns_every} steps")


def gns_summary(config: TrainConfig, rows: list, reached: Optional[float]) -> dict:
    """summary.json's B_simple reductions (``scaling.noise_scale.summarize``) from the metrics rows; all
    None when the measurement is off."""
    if not config.gns:
        return {k: None for k in GNS_SUMMARY_KEYS}
    logged = [(r["step"], r.get("gns_b_simple")) for r in rows if "gns_b_simple" in r and "step" in r]
    out = summarize([s for s, _ in logged], [v for _, v in logged], reached, batch_size=config.batch_size)
    return {k: out[k] for k in GNS_SUMMARY_KEYS}


def microbatch_size(config: TrainConfig, n_devices: int, vocab: int) -> int:
    """The microbatch (global sequences): given, from the memory budget, or the whole batch."""
    if config.microbatch_size is not None:
        return config.microbatch_size
    if config.microbatch_memory_gb is None:
        return config.batch_size
    m = config.model
    per_seq = parallel.activation_bytes_per_sequence(m.d_model, m.n_layers, m.n_heads, config.seq_len, vocab,
                                                     compute_bytes=2 if m.dtype == "bfloat16" else 4)
    return parallel.microbatch_for_memory(config.batch_size, n_devices, config.microbatch_memory_gb * 1e9, per_seq)


def checkpoint_every(config: TrainConfig) -> Optional[int]:
    """Steps between checkpoints when ``checkpoint_every_tokens`` is set; None: by wall time."""
    if config.checkpoint_every_tokens is not None:
        return max(1, int(round(config.checkpoint_every_tokens / config.tokens_per_step)))
    return None


def eval_metric_name(config: TrainConfig) -> str:
    return "eval_loss_ewa" if config.ewa_decays else "eval_loss"


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


# --- the run ----------------------------------------------------------------------------------
def run_info(config: TrainConfig, dataset, *, vocab: int, n_dev: int, micro: int, counts: dict,
             eval_sequences: int) -> dict:
    """Values derived at start-up (data, devices, counts) recorded in config.json's ``derived``."""
    return {"vocab_size": vocab, "tokenizer_vocab_size": dataset.vocab_size, "n_devices": n_dev,
            "microbatch_size": micro, "total_params": counts["total"],
            "non_embedding_params_counted": counts["non_embedding"],
            "flops_per_token": flops_per_token(config.model, vocab, config.seq_len),
            "eval_sequences": eval_sequences, "data": dataset.meta, "gns_method": gns_method(config, micro)}


def train(config: TrainConfig, run_dir: Path, *, progress: bool = False) -> dict:
    """Train one run into ``run_dir`` (resuming from its checkpoint); return the summary.

    A finished run (its ``status`` marker exists) is not retrained: the stored summary is
    returned. Bad input raises ``ScalingError`` before anything is written.
    """
    run_dir = Path(run_dir)
    done = rundir.read_summary(run_dir)
    if done is not None:
        return done

    from scaling.data.dataset import open_dataset
    from scaling.data.loader import BatchLoader, validation_batch
    from scaling.lm.mesh import shard_batch

    parallel.maybe_initialize_distributed()
    mesh = parallel.data_mesh()
    n_dev = parallel.n_devices(mesh)
    check_config(config, n_dev)
    enable_compilation_cache()

    dataset = open_dataset(config.data.source, config.data.tokenizer)
    model = build(config.model, dataset.vocab_size)
    seq_len, B = config.seq_len, config.batch_size
    micro = microbatch_size(config, n_dev, model.vocab_size)
    check_gns(config, micro)
    loader = BatchLoader(dataset.train, seq_len=seq_len, batch_size=B, seed=config.data.seed,
                         token_budget=config.token_cap, allow_repeat=config.data.allow_repeat)
    val = validation_batch(dataset.validation, seq_len=seq_len, max_tokens=config.data.val_tokens)
    n_ewa = len(config.ewa_decays)
    fns = compiled(model, batch_size=B, microbatch_size=micro, seq_len=seq_len, n_ewa=n_ewa,
                   schedule=config.optim.schedule, gns=config.gns, mesh=mesh,
                   gns_every=config.gns_every, gns_split=config.gns_split)
    hp = parallel.put_replicated(optim.hparams(config), mesh)
    val_chunks, val_weights = chunk_validation(val, config.eval.batch_size, n_dev)
    val_sharding = parallel.microbatch_sharding(mesh)
    val_chunks = jax.device_put(val_chunks, val_sharding)
    val_weights = jax.device_put(val_weights, val_sharding)
    batch_sharding = parallel.batch_sharding(mesh)

    run_id = config_hash(config)
    writer = parallel.is_writer()
    state = fns.init(np.int32(config.seed))
    counts = count_params(state.params)
    vocab = model.vocab_size
    info = run_info(config, dataset, vocab=vocab, n_dev=n_dev, micro=micro, counts=counts,
                    eval_sequences=int(val.shape[0]))
    if writer:
        resolved = config.resolved()
        resolved["derived"].update(info)
        rundir.write_config(run_dir, resolved, workload=WORKLOAD, run_id=run_id)

    ckpt = Checkpointer(run_dir)
    metrics_path = run_dir / rundir.METRICS
    start = ckpt.latest_step()
    prior_wall = 0.0
    if start is not None:
        state, meta = ckpt.restore(start, state)
        if meta.get("config_hash") != run_id:
            raise ScalingError(f"{run_dir} holds a checkpoint of another config "
                               f"({meta.get('config_hash')}, this is {run_id}); use another --out")
        loader.restore(meta["loader"])
        prior_wall = float(meta.get("wall_time_s", 0.0))
        if writer:  # rows after the checkpoint will be produced again
            truncate_jsonl(metrics_path, lambda r: r.get("step", 0) <= start)
    else:
        start = 0
        if writer:
            metrics_path.unlink(missing_ok=True)  # rows of an attempt that never checkpointed

    metric = eval_metric_name(config)
    history = [(r["step"], r.get(metric)) for r in rundir.read_metrics(run_dir) if metric in r]
    reached: Optional[float] = None
    if config.target_loss is not None and history:
        reached = crossing_step([s for s, _ in history], [v for _, v in history], config.target_loss)
    total = config.total_steps
    evals = set(eval_steps(total, config.tokens_per_step, config.eval))
    ckpt_every = checkpoint_every(config)
    tps = config.tokens_per_step

    bar = None
    if progress and writer:
        from tqdm import tqdm
        bar = tqdm(total=total, initial=start, file=sys.stderr, unit="step", dynamic_ncols=True,
                   desc=f"train {run_id}")

    rows: dict[int, dict] = {}

    def flush():
        if writer and rows:
            rundir.append_metrics(run_dir, [rows[s] for s in sorted(rows)])
        rows.clear()

    t0 = last_ckpt_time = time.perf_counter()
    paused = 0.0  # seconds spent in eval / checkpoint / IO, excluded from throughput
    last_log = (start, t0, 0.0)  # (step, time, paused) at the previous log row
    status: Optional[str] = None
    reason = ""
    final_eval: dict = {}
    step = start
    last_train_loss = float("nan")
    last_gns: dict = {}  # the latest step's gns_* metrics, copied onto eval rows

    def pull(step_done: int, metrics) -> bool:
        """Host side of step ``step_done``: divergence check, log row, progress. False if diverged."""
        nonlocal last_log, last_train_loss
        m = {k: float(v) for k, v in jax.device_get(metrics).items()}
        last_train_loss = m["train_loss"]
        last_gns.clear()
        last_gns.update({k: v for k, v in m.items() if k.startswith("gns_")})
        if bar is not None:
            bar.update(1)
        if not math.isfinite(m["train_loss"]):
            rows.setdefault(step_done, {"step": step_done, "tokens": step_done * tps}).update(m)
            return False
        if step_done % config.log_every == 0 or step_done == total:
            now = time.perf_counter()
            s0, t_prev, p_prev = last_log
            dt = (now - t_prev) - (paused - p_prev)
            m["tokens_per_s"] = (step_done - s0) * tps / dt if dt > 0 else None
            last_log = (step_done, now, paused)
            rows.setdefault(step_done, {"step": step_done, "tokens": step_done * tps}).update(m)
            if bar is not None:
                bar.set_postfix(loss=f"{m['train_loss']:.3f}",
                                tok_s=f"{m['tokens_per_s']:.3g}" if m["tokens_per_s"] else "-", refresh=False)
        return True

    try:
        pending = None
        while step < total:
            batch = shard_batch(loader.next_batch(), batch_sharding)
            state, metrics = fns.step(state, batch, hp)  # dispatched; runs while we look at t-1
            step += 1
            if pending is not None and not pull(*pending):
                status, reason = "diverged", f"non-finite train loss at step {pending[0]}"
                step = pending[0]
                pending = None
                break
            pending = (step, metrics)
            if ckpt_every is not None:
                at_ckpt = step % ckpt_every == 0 and step < total
            else:  # by wall time: resuming gives the same metrics whenever the checkpoints fall
                at_ckpt = step < total and time.perf_counter() - last_ckpt_time >= CHECKPOINT_INTERVAL_S
            at_eval = step in evals
            if not (at_eval or at_ckpt):
                if len(rows) >= FLUSH_ROWS:
                    flush()
                continue
            pause_start = time.perf_counter()
            ok = pull(*pending)
            pending = None
            if not ok:
                status, reason = "diverged", f"non-finite train loss at step {step}"
                break
            if at_eval:
                losses = np.asarray(jax.device_get(fns.evaluate(state, hp, val_chunks, val_weights)))
                final_eval = eval_row(losses)
                rows.setdefault(step, {"step": step, "tokens": step * tps}).update(final_eval, **last_gns)
                value = final_eval.get(metric)
                history.append((step, value))
                if bar is not None:
                    bar.set_postfix(loss=f"{last_train_loss:.3f}", eval=f"{value:.3f}", refresh=False)
                if not _finite(value) or not _finite(final_eval["eval_loss"]):
                    status, reason = "diverged", f"non-finite eval loss at step {step}"
                    break
                if config.target_loss is not None and reached is None:
                    reached = crossing_step([s for s, _ in history], [v for _, v in history], config.target_loss)
                    if reached is not None and config.stop_at_target:
                        status, reason = "done", f"target {config.target_loss:g} reached at step {reached:.1f}"
                        break
            flush()
            if at_ckpt:
                wall = prior_wall + time.perf_counter() - t0
                ckpt.save(step, state, {"step": step, "loader": loader.state(), "config_hash": run_id,
                                        "wall_time_s": wall})
                last_ckpt_time = time.perf_counter()
            paused += time.perf_counter() - pause_start
        if pending is not None and not pull(*pending):
            status, reason = "diverged", f"non-finite train loss at step {pending[0]}"
    except BaseException as e:
        if bar is not None:
            bar.close()
        flush()
        if not isinstance(e, (KeyboardInterrupt, ScalingError, SystemExit)) and writer:
            rundir.finish(run_dir, _summary(config, "failed", f"{type(e).__name__}: {e}", history, None,
                                            step, {}, info, loader, prior_wall + time.perf_counter() - t0, 0.0))
        raise
    if bar is not None:
        bar.close()
    flush()
    wall_session = time.perf_counter() - t0
    trained = (step - start) * tps
    tokens_per_s = trained / (wall_session - paused) if wall_session > paused else None

    if status is None:
        if config.target_loss is None:
            status, reason = "done", f"token budget reached ({total} steps)"
        elif reached is not None:
            status, reason = "done", f"target {config.target_loss:g} reached at step {reached:.1f}"
        else:
            status, reason = "censored", (f"token cap {config.token_cap} reached before the target "
                                          f"{config.target_loss:g}")
    if config.target_loss is not None and reached is None and history:
        reached = crossing_step([s for s, _ in history], [v for _, v in history], config.target_loss)
    if not final_eval and history:  # resumed after the last eval: final losses from the record
        last = [r for r in rundir.read_metrics(run_dir) if "eval_loss" in r]
        final_eval = last[-1] if last else {}
    summary = _summary(config, status, reason, history, reached, step, final_eval, info, loader,
                       prior_wall + wall_session, tokens_per_s)
    summary.update(gns_summary(config, rundir.read_metrics(run_dir), reached))
    if writer:
        rundir.finish(run_dir, summary)
    ckpt.delete_all()
    return summary


def _summary(config: TrainConfig, status: str, reason: str, history: list, reached: Optional[float], step: int,
             final_eval: dict, info: dict, loader, wall_time_s: float, tokens_per_s: Optional[float]) -> dict:
    values = [v for _, v in history if _finite(v)]
    return {
        "status": status,
        "reason": reason,
        "target_loss": config.target_loss,
        "steps_to_target": reached,
        "tokens_to_target": reached * config.tokens_per_step if reached is not None else None,
        "final_step": step,
        "final_tokens": step * config.tokens_per_step,
        "final_eval_loss": final_eval.get("eval_loss"),
        "final_eval_loss_ewa": final_eval.get("eval_loss_ewa"),
        "best_eval_loss": min(values) if values else None,
        "params": config.model.non_embedding_params,
        "total_params": info["total_params"],
        "flops_per_token": info["flops_per_token"],
        "tokens": config.data.tokens,
        "batch_size": config.batch_size,
        "microbatch_size": info["microbatch_size"],
        "seq_len": config.seq_len,
        "lr": config.optim.lr,
        "beta2": config.beta2,
        "ewa_decays": list(config.ewa_decays),
        "seed": config.seed,
        "epochs": loader.epochs,
        "wall_time_s": wall_time_s,
        "tokens_per_s": tokens_per_s,
        "eval_metric": eval_metric_name(config),
        "n_devices": info["n_devices"],
        "workload": WORKLOAD,
        "run_id": config_hash(config),
    }
