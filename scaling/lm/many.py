"""K runs that share every shape, trained as one compiled program: ``train_many(configs, run_dirs)``.

The step of ``scaling.lm.step`` is a pure function of (state, batch, hparams) with every number a
sweep varies in the traced ``hparams``; ``jax.vmap`` over a stacked state and stacked hparams
turns K such runs into one program (``scaling.lm.step.compiled(vmapped=True)``), trained by the
same loop and records as one run (``scaling.lm.train.train_runs``). Each run keeps its own
parameters, optimizer state, EWA averages, target detection, checkpoints and run directory; the
records have the format of a run trained alone, and the losses equal those of K separate runs up
to floating-point reduction order.

Resume: each run's checkpoint lives in its own run directory; the runs of a group resume
together from their common step, and runs whose latest checkpoints differ (a group that another
worker split differently) are trained as separate groups.
"""

from __future__ import annotations

from pathlib import Path

from scaling import rundir
from scaling.errors import ScalingError
from scaling.lm.checkpoint import Checkpointer
from scaling.lm.config import TrainConfig
from scaling.lm.train import train_runs

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


def train_many(configs: list[TrainConfig], run_dirs: list[Path], *, race: bool = False) -> list[dict]:
    """Train the runs together (one vmapped program); return their summaries in order.

    ``race``: the runs are one batch size's tuning grid chasing one target, and only the first to
    reach it matters (S(B) is the minimum over the grid, docs/design.md; Zhang et al. 2024,
    Sec. 2): at the evaluation where the first run(s) reach the target, the others stop,
    ``censored`` with ``censored_by: outpaced`` and ``outpaced_by`` naming the winner (their
    steps to target can only be larger). Without ``race`` every run goes on to its own target
    or cap.

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
    by_step: dict = {}
    for i, s in enumerate(done):
        if s is None:
            by_step.setdefault(Checkpointer(run_dirs[i]).latest_step(), []).append(i)
    for todo in by_step.values():
        new = train_runs([configs[i] for i in todo], [run_dirs[i] for i in todo], vmapped=True, race=race)
        for i, s in zip(todo, new):
            done[i] = s
    return done
