"""One training run, ``train(config, run_dir) -> summary`` (``scaling train CONFIG``), and the set-up
and resume that K vectorised runs share (``scaling.lm.many``).

A run is: open the data, build the model, fetch the compiled step for these shapes
(``scaling.lm.step``), restore the latest checkpoint if any, then the one host loop
(``scaling.lm.loop``) feeding each run's ``RunRecord`` (``scaling.lm.record``), which writes the
run directory (``scaling.rundir``: config.json, metrics.jsonl, summary.json, status).

Batch semantics (docs/design.md): ``batch_size`` sequences per step globally, accumulated over
``batch_size / microbatch_size`` microbatches inside the step, each split over the data mesh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import jax
import numpy as np

from scaling import rundir
from scaling.errors import ScalingError, storage_error
from scaling.identity import run_id
from scaling.lm import mesh as parallel
from scaling.lm import optim
from scaling.lm.checkpoint import RunCheckpoints
from scaling.lm.compile_cache import enable as enable_compile_cache
from scaling.lm.config import TrainConfig
from scaling.lm.evaluation import chunk_validation, eval_steps
from scaling.lm.loop import Loop, Progress, Schedule
from scaling.lm.model import build, count_params, flops_per_token
from scaling.lm.record import WORKLOAD, RunRecord
from scaling.lm.step import compiled, param_shapes, step_shape
from scaling.store import truncate_jsonl
from scaling.trackers import open_tracker

GNS_SPLIT_INDIVISIBLE = ("gns without microbatches splits the batch into gns_split equal parts (McCandlish "
                         "et al. 2018, App. A: a second, smaller batch size); batch_size must be divisible "
                         "by gns_split")


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


def run_info(config: TrainConfig, dataset, *, vocab: int, n_dev: int, micro: int, counts: dict,
             eval_sequences: int) -> dict:
    """Values derived at start-up (data, devices, counts) recorded in config.json's ``derived``."""
    return {"vocab_size": vocab, "tokenizer_vocab_size": dataset.vocab_size, "n_devices": n_dev,
            "microbatch_size": micro, "total_params": counts["total"],
            "non_embedding_params_counted": counts["non_embedding"],
            "flops_per_token": flops_per_token(config.model, vocab, config.seq_len),
            "eval_sequences": eval_sequences, "data": dataset.meta, "gns_method": gns_method(config, micro)}


def run_tracker(config: TrainConfig, run_dir: Path):
    """metrics.jsonl, plus the backend ``config.tracker`` names (``scaling.trackers``)."""
    return open_tracker(config.tracker, run_dir, run_id=run_id(WORKLOAD, config), config=config.resolved())


def stack(trees: list):
    """Stack a list of equal-structure pytrees on a new leading axis [K, ...]."""
    return jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *trees)


@dataclass
class Session:
    """Everything set up for runs that share shapes: one run, or K runs vmapped."""
    configs: list
    records: list
    vmapped: bool
    fns: object
    hp: object
    val: tuple
    loaders: list  # one when the runs share a data seed
    batch_sharding: object
    info: dict
    writer: bool

    @property
    def shared_batch(self) -> bool:
        return len(self.loaders) == 1

    def next_batch(self):
        """The step's batch. One process: the host array, placed by the step's in_shardings
        (``jax.device_put`` of a small array costs more than a tiny model's update)."""
        if jax.process_count() == 1:
            return self.loaders[0].next_batch() if self.shared_batch else np.stack([ld.next_batch() for ld in self.loaders])
        if self.shared_batch:
            return parallel.shard_batch(self.loaders[0].next_batch(), self.batch_sharding)
        return parallel.put_global(np.stack([ld.next_batch() for ld in self.loaders]), self.batch_sharding)

    def loader_of(self, k: int):
        return self.loaders[0 if self.shared_batch else k]


def setup(configs: list, run_dirs: list, *, vmapped: bool) -> Session:
    """Data, model, compiled functions and records for ``configs`` (which share every shape);
    ScalingError on bad input before anything is written."""
    from scaling.data.dataset import open_dataset
    from scaling.data.loader import BatchLoader, validation_batch

    parallel.maybe_initialize_distributed()
    mesh = parallel.data_mesh()
    n_dev = parallel.n_devices(mesh)
    for c in configs:
        check_config(c, n_dev)
    enable_compile_cache()
    first = configs[0]
    dataset = open_dataset(first.data.source, first.data.tokenizer)
    model = build(first.model, dataset.vocab_size)
    micro = microbatch_size(first, n_dev, model.vocab_size)
    check_gns(first, micro)
    seeds = [c.data.seed for c in configs]
    loaders = [BatchLoader(dataset.train, seq_len=c.seq_len, batch_size=c.batch_size, seed=c.data.seed,
                           token_budget=c.token_cap, allow_repeat=c.data.allow_repeat)
               for c in (configs[:1] if len(set(seeds)) == 1 else configs)]
    shared = len(loaders) == 1
    fns = compiled(model, step_shape(first, micro), mesh, vmapped=vmapped, shared_batch=shared)
    hparams = [optim.hparams(c) for c in configs]
    hp = parallel.put_replicated(stack(hparams) if vmapped else hparams[0], mesh)
    val = validation_batch(dataset.validation, seq_len=first.seq_len, max_tokens=first.data.val_tokens)
    chunks, weights = chunk_validation(val, first.eval.batch_size, n_dev)
    val_sharding = parallel.microbatch_sharding(mesh)
    batch_sharding = parallel.microbatch_sharding(mesh) if vmapped and not shared else parallel.batch_sharding(mesh)
    counts = count_params(param_shapes(model))
    info = run_info(first, dataset, vocab=model.vocab_size, n_dev=n_dev, micro=micro, counts=counts,
                    eval_sequences=int(val.shape[0]))
    writer = parallel.is_writer()
    records = [RunRecord(c, d, writer=writer, tracker=run_tracker(c, d) if writer else None)
               for c, d in zip(configs, run_dirs)]
    return Session(configs=list(configs), records=records,
                   vmapped=vmapped, fns=fns, hp=hp,
                   val=(parallel.put_global(chunks, val_sharding), parallel.put_global(weights, val_sharding)),
                   loaders=loaders, batch_sharding=batch_sharding, info=info, writer=writer)


def train(config: TrainConfig, run_dir: Path, *, progress: bool = False) -> dict:
    """Train one run into ``run_dir`` (resuming from its checkpoint); return the summary.

    A finished run (its ``status`` marker exists) is not retrained: the stored summary is
    returned; a failed one is trained again from its checkpoint. A directory holding another
    config's run is refused. Bad input raises ``ScalingError`` before anything is written.
    """
    run_dir = Path(run_dir)
    rundir.check_same_run(run_dir, run_id(WORKLOAD, config))
    done = rundir.read_summary(run_dir)
    if done is not None and done.get("status") not in rundir.RETRIED:
        return done
    if done is not None:
        rundir.clear_status(run_dir)  # a failed run: retried
    return train_runs([config], [run_dir], vmapped=False, progress=progress)[0]


def train_runs(configs: list, run_dirs: list, *, vmapped: bool, race: bool = False,
               progress: bool = False) -> list:
    """Train runs that share shapes with the one loop, from their common latest checkpoint (or
    afresh); returns their summaries in order. ``vmapped=False`` takes exactly one run."""
    if not vmapped and len(configs) != 1:
        raise ScalingError("one run at a time without vmapping")
    session = setup(configs, [Path(d) for d in run_dirs], vmapped=vmapped)
    records, first = session.records, configs[0]
    if session.writer:
        for r in records:
            resolved = r.config.resolved()
            resolved["derived"].update(session.info)
            rundir.write_config(r.run_dir, resolved, workload="lm", run_id=r.run_id)
    ckpts = RunCheckpoints(records, vmapped=vmapped)
    state = session.fns.init(np.asarray([c.seed for c in configs], np.int32) if vmapped else np.int32(first.seed))
    state, start, prior_wall = resume(session, ckpts, state)
    t0 = time.perf_counter()
    for r in records:
        r.resume(start, t0)

    def wall() -> float:
        return prior_wall + time.perf_counter() - t0

    def finish(r: RunRecord, paused: float) -> None:
        k = records.index(r)
        r.finish(session.info, session.loader_of(k).epochs, wall(), time.perf_counter() - t0 - paused)
        ckpts.delete(r)

    def save(step: int, st, active: list) -> None:
        ckpts.save(step, st, active, [session.loader_of(records.index(r)).state() for r in active], wall())

    evals = frozenset(eval_steps(first.total_steps, first.tokens_per_step, first.eval))
    schedule = Schedule(total=first.total_steps, evals=evals, checkpoint_every=checkpoint_every(first),
                        gns_every=first.gns_every if step_shape(first, session.info["microbatch_size"]).split_gns else None,
                        sparse_every=first.eval.sparse_every, near_target=first.eval.near_target,
                        raw_every=first.eval.raw_weights == "every" or not first.ewa_decays)
    bar = Progress(records[0], first.total_steps) if progress and session.writer and not vmapped else None
    loop = Loop(fns=session.fns, hp=session.hp, val=session.val, next_batch=session.next_batch, records=records,
                schedule=schedule, race=race, save=save, finish=finish, progress=bar)
    paused = 0.0
    try:
        state, paused = loop.run(state, start)
    except BaseException as e:
        for r in records:
            r.flush()
        if not isinstance(e, (KeyboardInterrupt, ScalingError, SystemExit)) and storage_error(e) is None:
            for r in records:
                if r.active:
                    r.stop("failed", f"{type(e).__name__}: {e}")
                    finish(r, paused)
        for r in records:
            if r.summary is None:
                r.tracker.finish(None)  # interrupted: resumes from its checkpoint
        raise
    finally:
        if bar is not None:
            bar.close()
    for r in records:
        r.end_of_budget()
        if r.summary is None:
            finish(r, paused)
    return [r.summary for r in records]


def resume(session: Session, ckpts: RunCheckpoints, state):
    """(state, start step, prior wall seconds) from the runs' latest common checkpoint; afresh
    (rows of an attempt that never checkpointed removed) when there is none."""
    start = ckpts.latest_step()
    if start is None:
        if session.writer:
            for r in session.records:
                (r.run_dir / rundir.METRICS).unlink(missing_ok=True)
        return state, 0, 0.0
    state, metas = ckpts.restore(start, state)
    for k, (r, meta) in enumerate(zip(session.records, metas)):
        if k < len(session.loaders):
            session.loaders[k].restore(meta["loader"])
        if session.writer:  # rows after the checkpoint will be produced again
            truncate_jsonl(r.run_dir / rundir.METRICS, lambda row: row.get("step", 0) <= start)
    return state, start, max(float(m.get("wall_time_s", 0.0)) for m in metas)
