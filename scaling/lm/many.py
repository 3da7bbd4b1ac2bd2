"""K runs that share every shape, trained as one compiled program: ``train_many(configs, run_dirs)``.

The step of ``scaling.lm.train`` is a pure function of (state, batch, hparams) with every number a
sweep varies in the traced ``hparams``; ``jax.vmap`` over a stacked state and stacked hparams
turns K such runs (a learning-rate grid, seeds, betas, EWA decays, targets at one batch size)
into one program whose matrix products are K times larger, which fills an accelerator that one
small run leaves idle. Each run keeps its own parameters, optimizer state, EWA averages, target
detection and run directory; the records have the format ``scaling.lm.train.train`` writes, and the
losses equal those of K separate runs up to floating-point reduction order.

Data: runs with one ``data.seed`` read one batch stream, broadcast to all runs (``in_axes=None``);
otherwise each run has its own loader and the batches are stacked [K, B, L+1].

Stopping: a run that reaches its target (``stop_at_target``) or diverges stops being recorded;
it keeps being computed (masked) until every run has stopped or the token cap is reached, so the
program never changes shape (no recompilation). In a ``race`` (one batch size's lr grid chasing
one target) everything stops when the first run reaches the target.

Not (yet) here: checkpoint/resume (an unfinished run directory is started afresh), progress bars,
gradient noise scale with multiple devices is untested. A finished run directory (``status``
exists) is not retrained; the others are.
"""

from __future__ import annotations

import math
import time
from functools import partial
from pathlib import Path
from typing import Optional

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from scaling import rundir
from scaling.lm import mesh as parallel, optim
from scaling.lm.config import TrainConfig, config_hash
from scaling.errors import ScalingError
from scaling.lm.evaluation import chunk_validation, eval_row, eval_steps, make_eval
from scaling.lm.model import build, count_params
from scaling.target import crossing_step
from scaling.lm.train import (FLUSH_ROWS, WORKLOAD, _finite, _summary, check_config, check_gns, enable_compilation_cache,
                           eval_metric_name, gns_summary, init_state, microbatch_size, run_info, train_step)

# Fields that fix the compiled program's shapes or the eval/record schedule: all runs must agree.
SHARED_FIELDS = {
    "model": lambda c: c.model,
    "batch_size": lambda c: c.batch_size,
    "microbatch_size": lambda c: (c.microbatch_size, c.microbatch_memory_gb),
    "seq_len": lambda c: c.seq_len,
    "data.source": lambda c: c.data.source,
    "data.tokenizer": lambda c: c.data.tokenizer,
    "data.val_tokens": lambda c: c.data.val_tokens,
    "data.allow_repeat": lambda c: c.data.allow_repeat,
    "number of EWA decays": lambda c: len(c.ewa_decays),
    "optim.schedule": lambda c: c.optim.schedule,
    "eval": lambda c: c.eval,
    "token cap": lambda c: c.token_cap,
    "log_every": lambda c: c.log_every,
    "gns": lambda c: (c.gns, c.gns_every, c.gns_split),
}

_COMPILED: dict[tuple, tuple] = {}


def shared_key(config: TrainConfig) -> tuple:
    """The values of ``SHARED_FIELDS``: runs with equal keys can be trained together."""
    return tuple(repr(get(config)) for get in SHARED_FIELDS.values())


def check_shared(configs: list[TrainConfig]) -> None:
    """ScalingError unless every config agrees on every field of ``SHARED_FIELDS``."""
    if not configs:
        raise ScalingError("train_many needs at least one config")
    first = configs[0]
    for name, get in SHARED_FIELDS.items():
        for i, c in enumerate(configs[1:], start=1):
            if get(c) != get(first):
                raise ScalingError(f"runs trained together must share {name}: run 0 has {get(first)!r}, "
                                   f"run {i} has {get(c)!r}")


def stack(trees: list):
    """Stack a list of equal-structure pytrees on a new leading axis [K, ...]."""
    return jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *trees)


def compiled_many(model, *, n_micro: int, n_ewa: int, schedule: str, gns: bool, gns_every: int, gns_split: int,
                  shared_batch: bool, mesh):
    """(init, step, evaluate) vmapped over a leading run axis; cached by static shapes.

    Returns (init, (step, measuring_step), evaluate). With ``gns`` and one microbatch the
    split-batch noise-scale measurement runs every ``gns_every`` steps; a ``lax.cond`` on the
    (batched) step counter would become a select under ``vmap`` and pay for the measurement every
    step, so the two variants are compiled separately and the host picks one per step
    (``train_step(measure=...)``); otherwise both entries are the same program.
    """
    split = gns and n_micro == 1
    key = (model.config, model.vocab_size, n_micro, n_ewa, schedule, gns, split and (gns_every, gns_split),
           shared_batch, tuple(d.id for d in mesh.devices.flat))
    if key not in _COMPILED:
        repl = parallel.replicated(mesh)
        batch_axis = None if shared_batch else 0

        def vstep(measure):
            step = partial(train_step, model=model, n_micro=n_micro, schedule=schedule, gns=gns,
                           **({"gns_split": gns_split, "measure": measure} if split else {}))
            return jax.jit(jax.vmap(step, in_axes=(0, batch_axis, 0)), donate_argnums=(0,),
                           out_shardings=(repl, repl))

        plain = vstep(False)
        _COMPILED[key] = (
            jax.jit(jax.vmap(partial(init_state, model=model, n_ewa=n_ewa)), out_shardings=repl),
            (plain, vstep(True) if split else plain),
            jax.jit(jax.vmap(make_eval(model), in_axes=(0, 0, None, None)), out_shardings=repl),
        )
    return _COMPILED[key]


class _Record:
    """Host-side bookkeeping of one run: rows, eval history, target, status (as in ``train``)."""

    def __init__(self, config: TrainConfig, run_dir: Path, writer: bool):
        self.config, self.run_dir, self.writer = config, run_dir, writer
        self.metric = eval_metric_name(config)
        self.history: list = []
        self.reached: Optional[float] = None
        self.rows: dict[int, dict] = {}
        self.status: Optional[str] = None
        self.reason = ""
        self.final_eval: dict = {}
        self.final_step = 0
        self.last_gns: dict = {}
        self.last_log = (0, 0.0, 0.0)
        self.outpaced_by: Optional[str] = None

    @property
    def active(self) -> bool:
        return self.status is None

    def row(self, step: int) -> dict:
        return self.rows.setdefault(step, {"step": step, "tokens": step * self.config.tokens_per_step})

    def pull(self, step: int, m: dict, now: float, paused: float) -> None:
        """Metrics of ``step`` (host floats): divergence check and log row."""
        if not self.active:
            return
        self.final_step = step
        self.last_gns = {k: v for k, v in m.items() if k.startswith("gns_")}
        if not math.isfinite(m["train_loss"]):
            self.row(step).update(m)
            self.status, self.reason = "diverged", f"non-finite train loss at step {step}"
            return
        if step % self.config.log_every == 0 or step == self.config.total_steps:
            s0, t_prev, p_prev = self.last_log
            dt = (now - t_prev) - (paused - p_prev)
            m = dict(m, tokens_per_s=(step - s0) * self.config.tokens_per_step / dt if dt > 0 else None)
            self.last_log = (step, now, paused)
            self.row(step).update(m)

    def evaluated(self, step: int, losses: np.ndarray) -> None:
        if not self.active:
            return
        cfg = self.config
        self.final_eval = eval_row(losses)
        self.row(step).update(self.final_eval, **self.last_gns)
        value = self.final_eval.get(self.metric)
        self.history.append((step, value))
        if not _finite(value) or not _finite(self.final_eval["eval_loss"]):
            self.status, self.reason = "diverged", f"non-finite eval loss at step {step}"
            return
        if cfg.target_loss is not None and self.reached is None:
            self.reached = crossing_step([s for s, _ in self.history], [v for _, v in self.history], cfg.target_loss)
            if self.reached is not None and cfg.stop_at_target:
                self.status, self.reason = "done", f"target {cfg.target_loss:g} reached at step {self.reached:.1f}"

    def outpaced(self, winner: "_Record", step: int) -> None:
        """Stopped because ``winner`` (same batch size) reached the target first: censored."""
        self.status = "censored"
        self.reason = (f"outpaced: {winner.run_dir.name} (lr {winner.config.optim.lr:g}) reached the target "
                       f"{self.config.target_loss:g} first, at step {winner.reached:.1f}; this run had not "
                       f"by step {step}")
        self.outpaced_by = winner.run_dir.name

    def flush(self) -> None:
        if self.writer and self.rows:
            rundir.append_metrics(self.run_dir, [self.rows[s] for s in sorted(self.rows)])
        self.rows.clear()

    def finish(self, info: dict, loader, wall: float, busy: float) -> dict:
        cfg = self.config
        if self.status is None:
            if cfg.target_loss is None:
                self.status, self.reason = "done", f"token budget reached ({cfg.total_steps} steps)"
            elif self.reached is not None:
                self.status, self.reason = "done", f"target {cfg.target_loss:g} reached at step {self.reached:.1f}"
            else:
                self.status, self.reason = "censored", (f"token cap {cfg.token_cap} reached before the target "
                                                        f"{cfg.target_loss:g}")
        if cfg.target_loss is not None and self.reached is None and self.history:
            self.reached = crossing_step([s for s, _ in self.history], [v for _, v in self.history], cfg.target_loss)
        tps = self.final_step * cfg.tokens_per_step / busy if busy > 0 else None
        summary = _summary(cfg, self.status, self.reason, self.history, self.reached, self.final_step,
                           self.final_eval, info, loader, wall, tps)
        summary.update(gns_summary(cfg, rundir.read_metrics(self.run_dir), self.reached))
        if self.outpaced_by is not None:
            summary["outpaced_by"] = self.outpaced_by
        if self.writer:
            rundir.finish(self.run_dir, summary)
        return summary


def train_many(configs: list[TrainConfig], run_dirs: list[Path], *, race: bool = False) -> list[dict]:
    """Train the runs together (one vmapped program); return their summaries in order.

    ``race``: the runs are one batch size's tuning grid chasing one target, and only the first to
    reach it matters (S(B) is the minimum over the grid, DESIGN.md; Zhang et al. 2024, Sec. 2):
    at the evaluation where the first run(s) reach the target, the others stop, ``censored``
    with reason "outpaced" and ``outpaced_by`` naming the winner (their steps to target can
    only be larger). Without ``race`` every run goes on to its own target or cap.

    The configs must share every field of ``SHARED_FIELDS`` (else ScalingError, nothing written);
    they may differ in every traced hyperparameter (lr, betas, eps, weight decay, clipping,
    warmup, EWA decays), ``seed``, ``data.seed``, ``data.tokens`` (with the same cap),
    ``target_loss`` and ``stop_at_target``. Finished run directories are returned as stored.
    """
    if len(configs) != len(run_dirs):
        raise ScalingError(f"{len(configs)} configs but {len(run_dirs)} run directories")
    run_dirs = [Path(d) for d in run_dirs]
    if len(set(d.resolve() for d in run_dirs)) != len(run_dirs):
        raise ScalingError("train_many: two runs share one run directory")
    check_shared(configs)
    done = [rundir.read_summary(d) for d in run_dirs]
    todo = [i for i, s in enumerate(done) if s is None]
    if todo:
        new = _train_together([configs[i] for i in todo], [run_dirs[i] for i in todo], race=race)
        for i, s in zip(todo, new):
            done[i] = s
    return done


def _train_together(configs: list[TrainConfig], run_dirs: list[Path], race: bool = False) -> list[dict]:
    from scaling.data.dataset import open_dataset
    from scaling.data.loader import BatchLoader, validation_batch
    from scaling.lm.mesh import DATA_AXIS

    parallel.maybe_initialize_distributed()
    mesh = parallel.data_mesh()
    n_dev = parallel.n_devices(mesh)
    for c in configs:
        check_config(c, n_dev)
    enable_compilation_cache()
    first = configs[0]

    dataset = open_dataset(first.data.source, first.data.tokenizer)
    model = build(first.model, dataset.vocab_size)
    seq_len, B = first.seq_len, first.batch_size
    micro = microbatch_size(first, n_dev, model.vocab_size)
    check_gns(first, micro)
    shared_batch = len({c.data.seed for c in configs}) == 1
    loaders = [BatchLoader(dataset.train, seq_len=seq_len, batch_size=B, seed=c.data.seed,
                           token_budget=c.token_cap, allow_repeat=c.data.allow_repeat)
               for c in (configs[:1] if shared_batch else configs)]
    val = validation_batch(dataset.validation, seq_len=seq_len, max_tokens=first.data.val_tokens)
    n_ewa = len(first.ewa_decays)
    init, (step_fn, measuring_step_fn), evaluate = compiled_many(model, n_micro=B // micro, n_ewa=n_ewa, schedule=first.optim.schedule,
                                            gns=first.gns, gns_every=first.gns_every, gns_split=first.gns_split,
                                            shared_batch=shared_batch, mesh=mesh)
    hp = parallel.put_replicated(stack([optim.hparams(c) for c in configs]), mesh)
    val_chunks, val_weights = chunk_validation(val, first.eval.batch_size, n_dev)
    val_sharding = parallel.microbatch_sharding(mesh)
    val_chunks = jax.device_put(val_chunks, val_sharding)
    val_weights = jax.device_put(val_weights, val_sharding)
    batch_sharding = NamedSharding(mesh, P(DATA_AXIS) if shared_batch else P(None, DATA_AXIS))

    writer = parallel.is_writer()
    state = init(np.asarray([c.seed for c in configs], np.int32))
    counts = count_params(jax.tree_util.tree_map(lambda x: x[0], state.params))
    vocab = model.vocab_size
    info = run_info(first, dataset, vocab=vocab, n_dev=n_dev, micro=micro, counts=counts,
                    eval_sequences=int(val.shape[0]))
    records = [_Record(c, d, writer) for c, d in zip(configs, run_dirs)]
    if writer:
        for c, d in zip(configs, run_dirs):
            resolved = c.resolved()
            resolved["derived"].update(info)
            rundir.write_config(d, resolved, workload=WORKLOAD, run_id=config_hash(c))
            (d / rundir.METRICS).unlink(missing_ok=True)  # no resume: rows of an earlier attempt

    total = first.total_steps
    evals = set(eval_steps(total, first.tokens_per_step, first.eval))
    t0 = time.perf_counter()
    for r in records:
        r.last_log = (0, t0, 0.0)
    paused = 0.0

    def pull(step_done: int, metrics) -> None:
        host = jax.device_get(metrics)
        now = time.perf_counter()
        for k, r in enumerate(records):
            r.pull(step_done, {name: float(v[k]) for name, v in host.items()}, now, paused)

    def next_batch():
        if shared_batch:
            return jax.device_put(loaders[0].next_batch(), batch_sharding)
        return jax.device_put(np.stack([ld.next_batch() for ld in loaders]), batch_sharding)

    step = 0
    pending = None
    try:
        while step < total and any(r.active for r in records):
            fn = measuring_step_fn if step % first.gns_every == 0 else step_fn
            state, metrics = fn(state, next_batch(), hp)  # dispatched; runs while we look at t-1
            step += 1
            if pending is not None:
                pull(*pending)
            pending = (step, metrics)
            if step not in evals:
                if len(records[0].rows) >= FLUSH_ROWS:
                    for r in records:
                        r.flush()
                continue
            pause_start = time.perf_counter()
            pull(*pending)
            pending = None
            if any(r.active for r in records):
                losses = np.asarray(jax.device_get(evaluate(state, hp, val_chunks, val_weights)))
                for k, r in enumerate(records):
                    r.evaluated(step, losses[k])
                winners = [r for r in records if r.status == "done" and r.reached is not None] if race else []
                if winners:
                    first_in = min(winners, key=lambda r: r.reached)
                    for r in records:
                        if r.active:
                            r.outpaced(first_in, step)
            for r in records:
                r.flush()
            paused += time.perf_counter() - pause_start
        if pending is not None:
            pull(*pending)
    except BaseException as e:
        for r in records:
            r.flush()
        if not isinstance(e, (KeyboardInterrupt, ScalingError, SystemExit)) and writer:
            for r in records:
                rundir.finish(r.run_dir, _summary(r.config, "failed", f"{type(e).__name__}: {e}", r.history, None,
                                                  r.final_step, {}, info, loaders[0],
                                                  time.perf_counter() - t0, 0.0))
        raise
    for r in records:
        r.flush()
    wall = time.perf_counter() - t0
    busy = wall - paused
    summaries = []
    for k, r in enumerate(records):
        loader = loaders[0] if shared_batch else loaders[k]
        summaries.append(r.finish(info, loader, wall, busy))
    return summaries
