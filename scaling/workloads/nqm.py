"""The noisy quadratic model as a sweep workload (``workload: nqm`` in a grid file).

One run = one (batch size, lr) on one NQM instance (``scaling.nqm``), trained for a sample
budget (``tokens``, D; seq_len is 1, so samples = tokens) or, when chasing a target, up to
``max_tokens``. By default the loss is the exact expected loss from the second-moment recursion
(deterministic, milliseconds per run; ``seed`` is recorded but changes nothing); with
``mode: sampled`` one trajectory with real Gaussian gradient noise is drawn from ``seed``.

Model size: ``params`` is the problem dimension ``dim`` -- the NQM's analogue of N (a larger
instance resolves more of the power-law spectrum's tail), not a parameter count of a network.

The run directory and summary follow ``scaling.rundir`` and the LM trainer's summary keys, so
``scaling steps / cbs / fit / figs`` read NQM sweeps unchanged. Evaluations are on the dyadic
schedule of ``scaling.nqm.sweep.schedule`` (8 per doubling of the step count, plus the budget's
last step), which makes a run's steps-to-target identical to ``scaling.nqm.exact_sweep``'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

from scaling.config_io import from_dict, require, to_dict
from scaling.identity import run_id
from scaling.rundir import METRICS, append_metrics, finish, write_config
from scaling.summary import CAP, OUTPACED, RunSummary


@dataclass(frozen=True)
class NQMConfig:
    """One NQM run. Generic sweep axes are top-level keys (see ``NQMWorkload.axis_keys``)."""

    batch_size: int = 16
    lr: float = 0.1
    tokens: int = 65_536  # D: sample budget (seq_len 1)
    seed: int = 0  # only used when mode = sampled
    target_loss: Optional[float] = None  # L*; None: train the whole budget (a reference run)
    max_tokens: Optional[int] = None  # sample cap when chasing the target; None: tokens
    stop_at_target: bool = True
    race_steps: Optional[float] = None  # a race: stop, censored as outpaced, at the first eval at or after it
    dim: int = 1000  # problem dimension: the model-size analogue (params)
    p: float = 1.0  # spectrum exponent, h_i = i^(-p)
    q: float = 0.0  # preconditioning power, P = H^(-q): 0 SGD, 0.5 Adam-like
    momentum: float = 0.0  # heavy-ball beta
    noise_scale: float = 1.0  # per-sample gradient noise c_i = noise_scale * h_i
    init_scale: float = 1.0  # theta_0,i
    evals_per_octave: int = 8  # eval schedule density (a power of two)
    mode: Literal["expected", "sampled"] = "expected"

    def __post_init__(self):
        require(self.batch_size > 0, f"batch_size must be positive, got {self.batch_size}")
        require(self.lr > 0, f"lr must be positive, got {self.lr}")
        require(self.tokens > 0, f"tokens must be positive, got {self.tokens}")
        require(self.max_tokens is None or self.max_tokens > 0, f"max_tokens must be positive, got {self.max_tokens}")
        require(self.target_loss is None or self.target_loss > 0,
                f"target_loss must be positive, got {self.target_loss}")
        require(self.race_steps is None or (self.race_steps > 0 and self.target_loss is not None),
                f"race_steps needs a target_loss and must be positive, got {self.race_steps}")
        require(self.batch_size <= self.token_cap,
                f"one step ({self.batch_size} samples) exceeds the run's {self.token_cap} samples")
        require(self.evals_per_octave > 0 and self.evals_per_octave & (self.evals_per_octave - 1) == 0,
                f"evals_per_octave must be a power of two, got {self.evals_per_octave}")
        self.problem(), self.optimizer()  # range checks of the NQM and optimizer

    @property
    def token_cap(self) -> int:
        return self.max_tokens if self.max_tokens is not None else self.tokens

    @property
    def total_steps(self) -> int:
        return self.token_cap // self.batch_size

    def problem(self):
        from scaling.nqm.problem import NQM
        return NQM(dim=self.dim, p=self.p, noise_scale=self.noise_scale, init_scale=self.init_scale)

    def optimizer(self):
        from scaling.nqm.problem import Optimizer
        return Optimizer(momentum=self.momentum, q=self.q)


class NQMWorkload:
    """``Workload`` (scaling.workloads.base) for the noisy quadratic model."""

    name = "nqm"
    axis_keys: Mapping[str, str] = {"batch_size": "batch_size", "lr": "lr", "tokens": "tokens",
                                    "seed": "seed", "target_loss": "target_loss", "max_tokens": "max_tokens",
                                    "race_steps": "race_steps"}

    def build_config(self, spec: Mapping[str, Any]) -> NQMConfig:
        return from_dict(NQMConfig, spec)

    def config_dict(self, config: NQMConfig) -> dict:
        return to_dict(config)

    def params(self, config: NQMConfig) -> int:
        """N analogue: the problem dimension (not a network's parameter count)."""
        return config.dim

    def tokens(self, config: NQMConfig) -> int:
        """D: the sample budget."""
        return config.tokens

    def run(self, config: NQMConfig, run_dir: Path, *, progress: bool = False) -> dict:
        return run_nqm(config, run_dir)


def curve(config: NQMConfig):
    """(eval steps, losses) of one run over its whole token cap; losses are +inf once diverged."""
    from scaling.nqm.recursion import expected_loss
    from scaling.nqm.sampled import sampled_loss
    from scaling.nqm.sweep import schedule

    steps = schedule(config.batch_size, config.tokens, config.token_cap, config.evals_per_octave)
    args = (config.problem(), config.optimizer(), config.lr, config.batch_size, steps)
    if config.mode == "expected":
        losses = expected_loss(*args)
    else:
        losses = sampled_loss(*args, seeds=1, seed=config.seed)[0]
    return steps, losses


def race_stop(config: NQMConfig, steps, losses, first_bad: int) -> Optional[int]:
    """The eval index where a raced run stops as outpaced (the first eval at or after
    ``race_steps`` still above the target, before any divergence), or None."""
    if config.race_steps is None or config.target_loss is None:
        return None
    for k in range(min(first_bad, len(steps))):
        if losses[k] <= config.target_loss:
            return None  # crossed first: its interpolated steps to target are below race_steps
        if steps[k] >= config.race_steps:
            return k
    return None


def run_nqm(config: NQMConfig, run_dir: Path) -> dict:
    """Compute the run's curve and write its run directory (config, metrics, summary, status)."""
    from scaling.nqm.sweep import DIVERGENCE_FACTOR, divergence_index, run_crossing

    run_dir = Path(run_dir)
    steps, losses = curve(config)
    first_bad = divergence_index(losses)
    bad = first_bad < len(losses)
    target = config.target_loss
    reached = run_crossing(steps, losses, target) if target is not None else None
    outpaced = race_stop(config, steps, losses, first_bad)
    if outpaced is not None:
        reached = None

    # metrics stop at the first eval at/below target (stop_at_target), at divergence or at the race
    end = first_bad
    if reached is not None and config.stop_at_target:
        end = min(end, next(k for k in range(len(steps)) if losses[k] <= target) + 1)
    censored_by = None
    if outpaced is not None:
        status, reason, censored_by = "censored", (f"outpaced: above the target at step {int(steps[outpaced])}, "
                                                   f"past the {config.race_steps:.1f} steps another lr needed"), OUTPACED
        end = outpaced + 1
    elif reached is None and bad:
        status, reason = "diverged", f"loss exceeded {DIVERGENCE_FACTOR:g}x its initial value at step {int(steps[first_bad])}"
        end = first_bad + 1
    elif target is None:
        status, reason = "done", "budget reached"
    elif reached is not None:
        status, reason = "done", "target reached"
    else:
        status, reason, censored_by = "censored", f"token cap {config.token_cap} reached before the target", CAP

    rows = [{"step": int(s), "tokens": int(s) * config.batch_size,
             "eval_loss": float(l) if math.isfinite(l) else None, "lr": config.lr}
            for s, l in zip(steps[:end], losses[:end])]
    finite = [r["eval_loss"] for r in rows if r["eval_loss"] is not None]
    final = rows[-1]
    rid = run_id(NQMWorkload.name, config)
    summary = RunSummary(
        status=status, reason=reason, censored_by=censored_by, target_loss=target, steps_to_target=reached,
        tokens_to_target=reached * config.batch_size if reached is not None else None,
        final_step=final["step"], final_tokens=final["tokens"], final_eval_loss=final["eval_loss"],
        best_eval_loss=min(finite) if finite else None, params=config.dim, tokens=config.tokens,
        batch_size=config.batch_size, seq_len=1, lr=config.lr, seed=config.seed, eval_metric="eval_loss",
        workload=NQMWorkload.name, run_id=rid, extra={"mode": config.mode})
    write_config(run_dir, {**to_dict(config), "derived": {"total_steps": config.total_steps,
                                                          "token_cap": config.token_cap}},
                 workload=NQMWorkload.name, run_id=rid)
    (run_dir / METRICS).unlink(missing_ok=True)  # a rerun replaces, never appends to, old metrics
    append_metrics(run_dir, rows)
    return finish(run_dir, summary)
