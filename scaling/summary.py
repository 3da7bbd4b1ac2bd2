"""The run summary: one typed record of how a run ended, written by ``scaling.rundir.finish``.

Every workload (the LM trainer, the NQM) and the sweep worker (failures, runs censored without
training) build a ``RunSummary``; ``summary.json`` is its ``to_dict()``. Why a run ended is a
code, never a sentence to parse: ``status`` (``rundir.STATUSES``) and, for a censored run,
``censored_by``:

- ``cap``       it trained to its token cap without reaching the target;
- ``outpaced``  another lr at the same batch size reached the target first (a race: S(B) is the
  minimum over the lrs, Zhang et al. 2024, Sec. 2), so this run's steps to target could only be
  larger; ``outpaced_by`` names the winner;
- ``implied``   not trained: a smaller batch size of its group was censored by the cap at every
  lr, and tokens to target grow with batch size (McCandlish et al. 2018), see
  ``scaling.sweep.worker.implied_censored``.

``reason`` is the human sentence that goes with the code. Records written before the code
existed are read with ``censored_by`` derived from their structure (``implied``/``outpaced_by``
keys), not from their sentence.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

CAP, OUTPACED, IMPLIED = "cap", "outpaced", "implied"
CENSORED_BY = (CAP, OUTPACED, IMPLIED)


@dataclass(frozen=True)
class RunSummary:
    status: str  # done | censored | diverged | failed (scaling.rundir.STATUSES)
    reason: str  # one human sentence; the code is status + censored_by
    censored_by: Optional[str] = None  # cap | outpaced | implied, for status "censored"
    target_loss: Optional[float] = None
    steps_to_target: Optional[float] = None  # interpolated crossing of the target (scaling.target)
    tokens_to_target: Optional[float] = None
    final_step: Optional[int] = None
    final_tokens: Optional[int] = None
    final_eval_loss: Optional[float] = None
    final_eval_loss_ewa: Optional[float] = None
    best_eval_loss: Optional[float] = None
    params: Optional[int] = None  # N (non-embedding parameters, or the workload's analogue)
    total_params: Optional[int] = None
    flops_per_token: Optional[float] = None
    tokens: Optional[int] = None  # D (unique training tokens)
    batch_size: Optional[int] = None  # sequences per optimizer step, global
    microbatch_size: Optional[int] = None
    seq_len: Optional[int] = None
    lr: Optional[float] = None
    beta2: Optional[float] = None
    ewa_decays: Optional[list] = None
    seed: Optional[int] = None
    epochs: Optional[float] = None
    wall_time_s: Optional[float] = None
    tokens_per_s: Optional[float] = None
    eval_metric: Optional[str] = None
    n_devices: Optional[int] = None
    workload: Optional[str] = None
    run_id: Optional[str] = None
    outpaced_by: Optional[str] = None  # the winning run's id, for censored_by "outpaced"
    b_simple_at_target: Optional[float] = None  # scaling.noise_scale.summarize
    b_simple_mean: Optional[float] = None
    b_simple_crit: Optional[float] = None
    b_simple_final: Optional[float] = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # workload-specific keys (e.g. the NQM's mode)

    def __post_init__(self):
        if self.status == "censored" and self.censored_by not in CENSORED_BY:
            raise ValueError(f"a censored run needs censored_by in {CENSORED_BY}, got {self.censored_by!r}")
        if self.status != "censored" and self.censored_by is not None:
            raise ValueError(f"censored_by {self.censored_by!r} on a {self.status!r} run")

    @property
    def implied(self) -> bool:
        return self.censored_by == IMPLIED

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        if out["ewa_decays"] is not None:
            out["ewa_decays"] = list(out["ewa_decays"])
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunSummary":
        """A summary.json back into a record; unknown keys go to ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names and k != "implied"}
        if known.get("status") == "censored" and known.get("censored_by") is None:
            known["censored_by"] = legacy_censored_by(data)
        known.setdefault("reason", "")
        return cls(**known, extra=extra)

    def replace(self, **changes) -> "RunSummary":
        return dataclasses.replace(self, **changes)


def reference_loss(summary: Mapping[str, Any]) -> Optional[float]:
    """The loss Definition 1 compares: final EWA eval loss if recorded, else final eval loss."""
    for key in ("final_eval_loss_ewa", "final_eval_loss"):
        v = summary.get(key)
        if v is not None and math.isfinite(float(v)):
            return float(v)
    return None


def legacy_censored_by(data: Mapping[str, Any]) -> str:
    """The code of a censored record written before ``censored_by`` existed, from its keys."""
    if data.get("implied"):
        return IMPLIED
    if data.get("outpaced_by"):
        return OUTPACED
    return CAP
