"""The workload protocol: what the sweep needs from anything it measures.

A workload turns a batch size, hyperparameters, a data budget and an optional target loss
into a run directory (``scaling.rundir``) holding a loss trajectory at the eval schedule and
the steps to the target. The LM trainer is one workload (``lm``), the noisy quadratic model
another (``nqm``); the sweep, ``scaling steps``, ``cbs``, ``fit`` and ``figs`` work unchanged
on either.

Grid axes are set through ``axis_keys``: dotted keys into the workload's config dict for the
sweep's generic axes (batch_size, lr, tokens, seed, target_loss, max_tokens).

Optional: ``together_key(config)``, ``together_by_default()`` and ``run_many(configs, run_dirs, race=..., progress=...)``
let the sweep train runs that share shapes as one program (``scaling.lm.many``); a workload
without them runs one run at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Protocol


class Workload(Protocol):
    name: str
    axis_keys: Mapping[str, str]  # generic axis -> dotted config key

    def build_config(self, spec: Mapping[str, Any]) -> Any:
        """Nested dict -> typed frozen config; ScalingError on unknown keys or bad values."""

    def config_dict(self, config: Any) -> dict:
        """The config as a JSON-able dict (its canonical form defines the run id)."""

    def params(self, config: Any) -> int:
        """N for the steps table (non-embedding parameters, or the model's size analogue)."""

    def tokens(self, config: Any) -> int:
        """D for the steps table (unique training tokens, or samples)."""

    def run(self, config: Any, run_dir: Path, *, progress: bool = False) -> dict:
        """Run (resuming from run_dir if it holds a checkpoint); write the run directory; return summary."""
