"""Experiment trackers: where a run's metrics go besides its record (levanter's shape: one
small interface, ``base.Tracker``, and a backend per file).

- ``jsonl`` (the default): the run directory's ``metrics.jsonl``, the record every reader of a
  sweep trusts (docs/design.md, "Run directory"). Every run writes it, whatever its tracker.
- ``wandb``: also a Weights & Biases run (project: the sweep's name, group: its (N, D) group,
  name: the run id; ``WANDB_MODE=offline`` works without a network).
- ``tensorboard``: also TensorBoard event files in ``RUN_DIR/tensorboard/``.

Chosen by ``tracker:`` in a train config or a grid's ``base`` (``scaling.lm.config.TrainConfig``);
never part of a run's identity, so switching tracker never changes a run id. No backend is
required: its package is imported only when a run asks for it (``pip install "scaling[wandb]"``,
``"scaling[tensorboard]"``). Nothing here imports JAX.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional

from scaling.errors import ScalingError
from scaling.trackers.base import Composite, RunContext, Tracker, run_context
from scaling.trackers.jsonl import JsonlTracker

DEFAULT = "jsonl"
TRACKERS = ("jsonl", "wandb", "tensorboard")


def open_tracker(kind: str, run_dir: Path, *, run_id: str, config: Optional[Mapping] = None) -> Tracker:
    """The run's tracker: the JSONL record, plus the backend ``kind`` names."""
    record = JsonlTracker(run_dir)
    if kind == DEFAULT:
        return record
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    ctx = run_context(run_dir, run_id=run_id, config=config)
    if kind == "wandb":
        from scaling.trackers.wandb import WandbTracker

        return Composite([record, WandbTracker(ctx)])
    if kind == "tensorboard":
        from scaling.trackers.tensorboard import TensorboardTracker

        return Composite([record, TensorboardTracker(ctx)])
    raise ScalingError(f"tracker {kind!r}: expected one of {', '.join(TRACKERS)}")


__all__ = ["DEFAULT", "TRACKERS", "Tracker", "RunContext", "open_tracker", "run_context"]
