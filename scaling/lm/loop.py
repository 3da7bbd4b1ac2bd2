"""The one host loop, shared by a single run and K vectorised runs.

It reads top to bottom (nanodo's ``train_and_evaluate``): for each step, dispatch the update
and only *then* pull the previous step's metrics to the host, so the device never waits for
Python. What happens between steps is a set of policies, each a small object beside the loop
(levanter's hooks), not a copy of the loop:

- ``Schedule``   which steps evaluate (``scaling.lm.evaluation.eval_steps``) and checkpoint,
                 and (opt-in, ``eval.sparse_every``) which of them may wait while far from L*;
- evaluation     the records decide divergence, the target crossing and the target stop;
- racing         in a race (one batch size's lrs chasing one target, S(B) being the minimum
                 over them, Zhang et al. 2024, Sec. 2) the first run to reach the target stops
                 the others, recorded as outpaced;
- checkpointing  ``Checkpoints.save`` for the runs still going;
- ``Progress``   an optional progress bar.

A record stops being updated when its run stops (target, divergence, outpaced); the program
keeps computing it (masked) until every run has stopped or the cap is reached, so its shape
never changes (no recompilation).

Sparse evaluations (``eval.sparse_every`` = n > 1, runs with a target): a scheduled step is
evaluated when it is every n-th of the schedule, the last step, or when the last evaluation was
within ``eval.near_target`` of L*; the other scheduled steps keep a copy of the weights an
evaluation reads (``EvalWeights``, a few parameter-sized arrays). An evaluation that finds a run
at or below L* first evaluates those kept copies in order until that run's crossing, so the
crossing is interpolated between two consecutive steps of the dense schedule, as without the
policy; it can only differ if the loss dipped below L* at a skipped step and rose above it again
by the next evaluated one (on the 143 target runs of runs/cpu_reference it never did, for
n <= 8). A checkpoint first evaluates the kept copies (a resumed run has none). A run may train
past its crossing until the next evaluated step; it records where it stopped (``final_step``).

Raw weights at the last evaluation only (``eval.raw_weights: last``, runs with an EWA, whose loss
is the target metric): an evaluation computes the EWA losses alone, and the raw weights' loss is
added for the runs that stop there (target, divergence, outpaced) and at the cap, so every
run's summary still reports its final raw loss.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional

import numpy as np

from scaling.lm.evaluation import eval_row, eval_weights
from scaling.lm.record import RunRecord

FLUSH_ROWS = 100  # buffered metrics rows of a run before an append to metrics.jsonl
CHECKPOINT_INTERVAL_S = 300.0  # wall seconds between checkpoints when none is set in tokens


@dataclass(frozen=True)
class Schedule:
    total: int  # steps (the token cap)
    evals: frozenset
    checkpoint_every: Optional[int]  # steps; None: every CHECKPOINT_INTERVAL_S of wall time
    gns_every: Optional[int] = None  # split-batch noise scale: the measuring step every n steps
    sparse_every: int = 1  # eval.sparse_every (1: every scheduled step is evaluated)
    near_target: float = 0.05  # eval.near_target
    raw_every: bool = True  # the raw weights at every evaluation (False: eval.raw_weights last, with an EWA)

    def __post_init__(self):
        object.__setattr__(self, "_index", {s: i for i, s in enumerate(sorted(self.evals))})

    def evaluates_now(self, step: int, records: list) -> bool:
        """At scheduled step ``step``: evaluate now, or keep the weights for later (see the module
        docstring). Dense unless sparse_every > 1 and every active run has a target."""
        if self.sparse_every <= 1 or step >= self.total or (self._index[step] + 1) % self.sparse_every == 0:
            return True
        for r in records:
            if not r.active:
                continue
            target = r.config.target_loss
            if target is None or (r.history and r.history[-1][1] <= target * (1.0 + self.near_target)):
                return True
        return False

    def checkpoint_due(self, step: int, since_last_s: float) -> bool:
        if step >= self.total:
            return False
        if self.checkpoint_every is not None:
            return step % self.checkpoint_every == 0
        return since_last_s >= CHECKPOINT_INTERVAL_S  # resuming gives the same metrics wherever they fall


class Progress:
    """A tqdm bar over steps for one run (``scaling train`` without ``--quiet``)."""

    def __init__(self, record: RunRecord, total: int):
        from tqdm import tqdm

        self.record = record
        self.bar = tqdm(total=total, initial=record.start, file=sys.stderr, unit="step", dynamic_ncols=True,
                        desc=f"train {record.run_id}")

    def stepped(self, step: int) -> None:
        self.bar.update(1)
        row = self.record.rows.get(step)
        if row and "tokens_per_s" in row:
            tps = row["tokens_per_s"]
            self.bar.set_postfix(loss=f"{row['train_loss']:.3f}", tok_s=f"{tps:.3g}" if tps else "-", refresh=False)

    def evaluated(self, value) -> None:
        self.bar.set_postfix(loss=f"{self.record.last_train_loss:.3f}", eval=f"{value:.3f}", refresh=False)

    def close(self) -> None:
        self.bar.close()


class Kept(NamedTuple):
    """The weights of a scheduled step not yet evaluated, and each run's noise-scale metrics there."""
    step: int
    weights: object  # scaling.lm.evaluation.EvalWeights (a copy)
    gns: list


@dataclass
class Loop:
    """The loop's inputs: compiled functions, their data and the policies."""
    fns: object  # scaling.lm.step.Compiled
    hp: object  # traced hyperparameters (stacked [K] when vmapped)
    val: tuple  # (validation chunks, weights) on the devices
    next_batch: Callable  # () -> the step's batch on the devices
    records: list
    schedule: Schedule
    race: bool = False
    save: Optional[Callable] = None  # (step, state, records) -> None: checkpoint the active runs
    finish: Optional[Callable] = None  # (record, paused s) -> None: write a stopped run's record now
    progress: Optional[Progress] = None

    def __post_init__(self):
        self.kept: list = []  # Kept: scheduled steps whose evaluation waits (sparse evaluations)

    def run(self, state, start: int):
        """Train from step ``start`` until every run stopped or the cap; returns (state, paused s)."""
        step, pending, paused = start, None, 0.0
        last_ckpt = time.perf_counter()
        while step < self.schedule.total and any(r.active for r in self.records):
            fn = self.fns.measuring_step if self._measures(step) else self.fns.step
            state, metrics = fn(state, self.next_batch(), self.hp)  # dispatched; runs while we look at t-1
            step += 1
            if pending is not None:
                self._pull(*pending, paused)
            pending = (step, metrics)
            at_eval = step in self.schedule.evals
            at_ckpt = self.save is not None and self.schedule.checkpoint_due(step, time.perf_counter() - last_ckpt)
            if not (at_eval or at_ckpt):
                for r in self.records:
                    if len(r.rows) >= FLUSH_ROWS and not self.kept:  # rows wait for kept evaluations
                        r.flush()
                continue
            t0 = time.perf_counter()
            self._pull(*pending, paused)
            pending = None
            if at_eval and any(r.active for r in self.records):
                if self.schedule.evaluates_now(step, self.records):
                    self._evaluate(state, step)
                else:
                    self.kept.append(Kept(step, self.fns.snapshot(eval_weights(state)),
                                          [dict(r.last_gns) for r in self.records]))
            if at_ckpt and self.kept:
                self._evaluate_kept(until_crossing=[])
            self._finish_stopped(paused + time.perf_counter() - t0)
            if not self.kept:
                for r in self.records:
                    r.flush()
            if at_ckpt and any(r.active for r in self.records):
                self.save(step, state, [r for r in self.records if r.active])
                last_ckpt = time.perf_counter()
            paused += time.perf_counter() - t0
        if pending is not None:
            self._pull(*pending, paused)
        return state, paused

    def _measures(self, step: int) -> bool:
        return self.schedule.gns_every is not None and step % self.schedule.gns_every == 0

    def _pull(self, step: int, metrics, paused: float) -> None:
        host = {name: np.asarray(v) for name, v in metrics.items()}  # jax.device_get costs ~10x more
        now = time.perf_counter()
        for k, r in enumerate(self.records):
            m = {name: float(v[k] if self.fns.vmapped else v) for name, v in host.items()}
            if r.pull(step, m, now, paused) and self.progress is not None:
                self.progress.stepped(step)

    def _losses(self, weights, raw: bool = True) -> np.ndarray:
        """[K, 1 + n_ewa] losses (raw first), or [K, n_ewa] EWA losses alone (``raw=False``)."""
        fn = self.fns.evaluate if raw else self.fns.evaluate_averaged
        losses = np.asarray(fn(weights, self.hp, *self.val))
        return losses if self.fns.vmapped else losses[None]

    def _evaluate(self, state, step: int) -> None:
        raw = self.schedule.raw_every
        weights = eval_weights(state)
        losses = self._losses(weights, raw)
        if self.kept:
            crossed = [r for k, r in enumerate(self.records) if r.active and r.config.target_loss is not None
                       and eval_row(losses[k], raw).get(r.metric, np.inf) <= r.config.target_loss]
            if crossed:
                self._evaluate_kept(until_crossing=crossed)
            self.kept.clear()  # nobody crossed: the skipped steps cannot hold a first crossing but by a dip
        was_active = [r.active for r in self.records]
        for k, r in enumerate(self.records):
            r.evaluated(step, losses[k], raw)
        if self.progress is not None:
            self.progress.evaluated(self.records[0].final_eval.get(self.records[0].metric))
        if self.race:
            winners = [r for r in self.records if r.status == "done" and r.reached is not None]
            if winners:
                first_in = min(winners, key=lambda r: r.reached)
                for r in self.records:
                    if r.active:
                        r.outpaced(first_in, step)
        if not raw:
            self._raw_where_stopped(weights, step, was_active)

    def _evaluate_kept(self, until_crossing: list) -> None:
        """Evaluate the kept steps in order, until every run of ``until_crossing`` has its
        crossing or stopped (all of them when empty), and forget them."""
        raw = self.schedule.raw_every
        for kept in self.kept:
            losses = self._losses(kept.weights, raw)
            was_active = [r.active for r in self.records]
            for k, r in enumerate(self.records):
                now, r.last_gns = r.last_gns, kept.gns[k]  # the eval row carries the step's own values
                r.evaluated(kept.step, losses[k], raw)
                r.last_gns = now
            if not raw:
                self._raw_where_stopped(kept.weights, kept.step, was_active)
            if until_crossing and all(r.reached is not None or not r.active for r in until_crossing):
                break
        self.kept.clear()

    def _raw_where_stopped(self, weights, step: int, was_active: list) -> None:
        """The raw weights' loss for the runs whose last evaluation this was (raw_weights: last):
        those it stopped and, at the cap, those still going (a kept step is never the cap's)."""
        last = step >= self.schedule.total
        stopped = [k for k, r in enumerate(self.records) if was_active[k] and (last or not r.active)]
        if stopped:
            raw = np.asarray(self.fns.evaluate_raw(weights, self.hp, *self.val))
            raw = raw if self.fns.vmapped else raw[None]
            for k in stopped:
                self.records[k].evaluated_raw(step, float(raw[k][0]))

    def _finish_stopped(self, paused: float) -> None:
        if self.finish is None:
            return
        for r in self.records:
            if not r.active and r.summary is None:
                self.finish(r, paused)
