"""Checkpoints with orbax: train state (step, params, optimizer state, EWA, RNG) plus a JSON
``meta`` record (data-loader position, wall time, config hash).

Orbax writes each checkpoint into a temporary directory and renames it when complete, so a
run killed mid-save (even by SIGKILL) resumes from the previous complete checkpoint. Only the
latest ``KEEP`` checkpoints are kept. Saving is synchronous: a checkpoint on disk always
matches the metrics rows written before it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Optional

import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"
KEEP = 1


class Checkpointer:
    def __init__(self, run_dir: Path):
        self.directory = (Path(run_dir) / CHECKPOINT_DIR).absolute()
        self._manager: Optional[ocp.CheckpointManager] = None

    @property
    def manager(self) -> ocp.CheckpointManager:
        if self._manager is None:
            options = ocp.CheckpointManagerOptions(max_to_keep=KEEP, create=True,
                                                   enable_async_checkpointing=False)
            self._manager = ocp.CheckpointManager(self.directory, options=options)
        return self._manager

    def latest_step(self) -> Optional[int]:
        if not self.directory.exists():
            return None
        return self.manager.latest_step()

    def save(self, step: int, state: Any, meta: dict) -> None:
        self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                        meta=ocp.args.JsonSave(meta)), force=True)
        self.manager.wait_until_finished()

    def restore(self, step: int, like_state: Any) -> tuple[Any, dict]:
        """Restore into the structure, dtypes and shardings of ``like_state``."""
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(like_state), meta=ocp.args.JsonRestore()))
        return restored["state"], dict(restored["meta"])

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
            self._manager = None

    def delete_all(self) -> None:
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)
