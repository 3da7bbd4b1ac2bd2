"""The host-side record of one run: log rows, evaluations, target crossing, status and summary.

One ``RunRecord`` per run, whether the run trains alone (``scaling.lm.train``) or as one of K
vectorised runs (``scaling.lm.many``); the loop (``scaling.lm.loop``) feeds it each step's
metrics and each evaluation, and it decides what the run directory says:

- a non-finite train or eval loss makes the run ``diverged`` (never confused with censoring);
- the steps to the target are the crossing of L* interpolated between the two evaluations that
  bracket it (``scaling.target.crossing_step``; Zhang et al. 2024 read the first eval below L*),
  on the EWA loss when EWA is on (the paper's protocol), on the raw loss otherwise;
- with ``stop_at_target`` a run stops at the evaluation where it crosses; a run that reaches its
  token cap first is ``censored`` (``censored_by: cap``), one outpaced in a race
  ``censored`` (``censored_by: outpaced``).

A record is finished (``summary.json`` and ``status`` written, ``scaling.rundir.finish``) as soon
as the run stops, so a killed group resumes only the runs still going.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np

from scaling import rundir
from scaling.identity import run_id
from scaling.lm.config import TrainConfig
from scaling.lm.evaluation import eval_row
from scaling.noise_scale import summarize
from scaling.summary import CAP, OUTPACED, RunSummary
from scaling.target import crossing_step
from scaling.trackers import Tracker
from scaling.trackers.jsonl import JsonlTracker

WORKLOAD = "lm"


def eval_metric_name(config: TrainConfig) -> str:
    return "eval_loss_ewa" if config.ewa_decays else "eval_loss"


def finite(x) -> bool:
    return x is not None and math.isfinite(x)


class RunRecord:
    """Rows, eval history, target crossing and status of one run (see the module docstring)."""

    def __init__(self, config: TrainConfig, run_dir: Path, *, writer: bool = True, tracker: Optional[Tracker] = None):
        self.config, self.run_dir, self.writer = config, Path(run_dir), writer
        self.tracker = tracker if tracker is not None else JsonlTracker(self.run_dir)  # writes metrics.jsonl
        self.run_id = run_id(WORKLOAD, config)
        self.metric = eval_metric_name(config)
        self.history: list = []  # (step, eval metric) of every evaluation
        self.reached: Optional[float] = None
        self.rows: dict[int, dict] = {}  # buffered metrics rows, by step
        self.status: Optional[str] = None
        self.reason = ""
        self.censored_by: Optional[str] = None
        self.outpaced_by: Optional[str] = None
        self.final_eval: dict = {}
        self.start = 0  # the step this session resumed from
        self.final_step = 0
        self.last_train_loss = float("nan")
        self.last_gns: dict = {}  # the latest step's gns_* metrics, copied onto eval rows
        self.last_log = (0, 0.0, 0.0)  # (step, time, paused) at the previous log row
        self.summary: Optional[dict] = None  # set once finished

    @property
    def active(self) -> bool:
        return self.status is None

    def resume(self, start: int, now: float) -> None:
        """Continue from step ``start`` (0: afresh): history and final eval from the rows on disk,
        which the caller has cut back to the checkpoint."""
        self.start = self.final_step = start
        self.last_log = (start, now, 0.0)
        # rows past ``start`` are cut back by the writer; another process may read before it has
        evals = [r for r in rundir.read_metrics(self.run_dir) if self.metric in r and r.get("step", 0) <= start]
        self.history = [(r["step"], r.get(self.metric)) for r in evals]
        self.final_eval = evals[-1] if evals else {}
        self._update_crossing()

    def _update_crossing(self) -> None:
        if self.config.target_loss is not None and self.reached is None and self.history:
            self.reached = crossing_step([s for s, _ in self.history], [v for _, v in self.history],
                                         self.config.target_loss)

    def row(self, step: int) -> dict:
        return self.rows.setdefault(step, {"step": step, "tokens": step * self.config.tokens_per_step})

    def pull(self, step: int, m: dict, now: float, paused: float) -> bool:
        """Host metrics of ``step``: divergence check and log row. False once the run stopped."""
        if not self.active:
            return False
        self.final_step = step
        self.last_train_loss = m["train_loss"]
        self.last_gns = {k: v for k, v in m.items() if k.startswith("gns_")}
        if not math.isfinite(m["train_loss"]):
            self.row(step).update(m)
            self.stop("diverged", f"non-finite train loss at step {step}")
            return False
        if step % self.config.log_every == 0 or step == self.config.total_steps:
            s0, t_prev, p_prev = self.last_log
            dt = (now - t_prev) - (paused - p_prev)
            m = dict(m, tokens_per_s=(step - s0) * self.config.tokens_per_step / dt if dt > 0 else None)
            self.last_log = (step, now, paused)
            self.row(step).update(m)
        return True

    def evaluated(self, step: int, losses: np.ndarray, raw: bool = True) -> None:
        """The evaluation at ``step`` ([1 + n_ewa] losses, or [n_ewa] EWA losses without the raw
        weights' when ``raw`` is False): divergence, crossing, target stop."""
        if not self.active:
            return
        self.final_eval = eval_row(losses, raw)
        self.row(step).update(self.final_eval, **self.last_gns)
        value = self.final_eval.get(self.metric)
        self.history.append((step, value))
        if not finite(value) or (raw and not finite(self.final_eval["eval_loss"])):
            self.stop("diverged", f"non-finite eval loss at step {step}")
            return
        self._update_crossing()
        race = self.config.race_steps
        if self.reached is not None and self.config.stop_at_target:
            self.stop("done", f"target {self.config.target_loss:g} reached at step {self.reached:.1f}")
        elif self.reached is None and race is not None and step >= race:
            self.stop("censored", f"outpaced: above the target {self.config.target_loss:g} at step {step}, past "
                                  f"the {race:.1f} steps another lr needed", censored_by=OUTPACED)

    def evaluated_raw(self, step: int, loss: float) -> None:
        """The raw weights' loss at ``step``, this run's last evaluation (``eval.raw_weights: last``)."""
        self.final_eval["eval_loss"] = loss
        self.row(step)["eval_loss"] = loss

    def outpaced(self, winner: "RunRecord", step: int) -> None:
        """Stopped because ``winner`` (same batch size) reached the target first."""
        self.stop("censored", f"outpaced: {winner.run_dir.name} (lr {winner.config.optim.lr:g}) reached the "
                              f"target {self.config.target_loss:g} first, at step {winner.reached:.1f}; this run "
                              f"had not by step {step}", censored_by=OUTPACED)
        self.outpaced_by = winner.run_dir.name

    def stop(self, status: str, reason: str, censored_by: Optional[str] = None) -> None:
        self.status, self.reason, self.censored_by = status, reason, censored_by

    def end_of_budget(self) -> None:
        """The loop ran to the token cap: done (no target, or reached it) or censored by the cap."""
        cfg = self.config
        if not self.active:
            return
        if cfg.target_loss is None:
            self.stop("done", f"token budget reached ({cfg.total_steps} steps)")
        elif self.reached is not None:
            self.stop("done", f"target {cfg.target_loss:g} reached at step {self.reached:.1f}")
        else:
            self.stop("censored", f"token cap {cfg.token_cap} reached before the target {cfg.target_loss:g}",
                      censored_by=CAP)

    def flush(self) -> None:
        if self.writer and self.rows:
            self.tracker.log([self.rows[s] for s in sorted(self.rows)])
        self.rows.clear()

    def finish(self, info: dict, epochs: float, wall_s: float, busy_s: float) -> dict:
        """Write summary.json and the status marker; returns the summary dict."""
        self.flush()
        trained = (self.final_step - self.start) * self.config.tokens_per_step
        summary = self.summarize(info, epochs, wall_s, trained / busy_s if busy_s > 0 else None)
        self.summary = rundir.finish(self.run_dir, summary) if self.writer else summary.to_dict()
        self.tracker.finish(self.summary)
        return self.summary

    def summarize(self, info: dict, epochs: float, wall_s: float, tokens_per_s: Optional[float]) -> RunSummary:
        cfg = self.config
        values = [v for _, v in self.history if finite(v)]
        reached = self.reached if self.status != "failed" else None
        return RunSummary(
            status=self.status, reason=self.reason, censored_by=self.censored_by, target_loss=cfg.target_loss,
            steps_to_target=reached,
            tokens_to_target=reached * cfg.tokens_per_step if reached is not None else None,
            final_step=self.final_step, final_tokens=self.final_step * cfg.tokens_per_step,
            final_eval_loss=self.final_eval.get("eval_loss"), final_eval_loss_ewa=self.final_eval.get("eval_loss_ewa"),
            best_eval_loss=min(values) if values else None, params=cfg.model.non_embedding_params,
            total_params=info["total_params"], flops_per_token=info["flops_per_token"], tokens=cfg.data.tokens,
            batch_size=cfg.batch_size, microbatch_size=info["microbatch_size"], seq_len=cfg.seq_len,
            lr=cfg.optim.lr, beta2=cfg.beta2, ewa_decays=list(cfg.ewa_decays), seed=cfg.seed, epochs=epochs,
            wall_time_s=wall_s, tokens_per_s=tokens_per_s, eval_metric=self.metric, n_devices=info["n_devices"],
            workload=WORKLOAD, run_id=self.run_id, outpaced_by=self.outpaced_by, **self.noise_scale(reached))

    def noise_scale(self, reached: Optional[float]) -> dict:
        """B_simple reductions (``scaling.noise_scale.summarize``) from the rows on disk; all None
        when the measurement is off."""
        keys = ("b_simple_at_target", "b_simple_mean", "b_simple_crit", "b_simple_final")
        if not self.config.gns:
            return {k: None for k in keys}
        logged = [(r["step"], r.get("gns_b_simple")) for r in rundir.read_metrics(self.run_dir)
                  if "gns_b_simple" in r and "step" in r]
        out = summarize([s for s, _ in logged], [v for _, v in logged], reached, batch_size=self.config.batch_size)
        return {k: out[k] for k in keys}
