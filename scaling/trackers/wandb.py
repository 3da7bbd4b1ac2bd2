"""Weights & Biases backend (``tracker: wandb``; ``pip install "scaling[wandb]"``).

One W&B run per run: project = the sweep's name (``WANDB_PROJECT`` overrides; "scaling" outside a
sweep), group = its (N, D) group, job type = its phase, name = the run id, config = the resolved
config; files under the run directory (``RUN_DIR/wandb/``, or ``WANDB_DIR``). Rows are logged at
their own step; the summary's numbers go to the W&B summary. ``WANDB_MODE=offline`` writes
everything locally (``wandb sync RUN_DIR/wandb/offline-run-*`` uploads it later). A resumed run
starts a new W&B run of the same name and group, from its checkpoint's step.
"""

from __future__ import annotations

import os
from typing import Optional

from scaling.errors import ScalingError
from scaling.trackers.base import RunContext, scalars


class WandbTracker:
    def __init__(self, ctx: RunContext):
        try:
            import wandb
        except ImportError:
            raise ScalingError('tracker: wandb needs wandb: pip install "scaling[wandb]"') from None
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT") or ctx.project, group=ctx.group,
                              job_type=ctx.job_type, name=ctx.run_id, tags=list(ctx.tags), config=ctx.config,
                              dir=os.environ.get("WANDB_DIR") or str(ctx.run_dir), reinit="create_new",
                              settings=wandb.Settings(console="off", silent=True, x_disable_stats=True))

    def log(self, rows: list) -> None:
        for row in rows:
            self.run.log(scalars(row), step=int(row["step"]))

    def finish(self, summary: Optional[dict]) -> None:
        if summary is not None:
            self.run.summary.update({k: v for k, v in summary.items()
                                     if isinstance(v, (int, float, str)) and not isinstance(v, bool)})
        failed = summary is None or summary.get("status") == "failed"
        self.run.finish(exit_code=1 if failed else 0)
