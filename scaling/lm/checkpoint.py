"""Checkpoints with orbax: train state (step, params, optimizer state, EWA, RNG) plus a JSON
``meta`` record (data-loader position, wall time, run id), one per run directory.

Orbax writes each checkpoint into a temporary directory and renames it when complete, so a
run killed mid-save (even by SIGKILL) resumes from the previous complete checkpoint. Only the
latest ``KEEP`` checkpoints are kept. Saving is synchronous: a checkpoint on disk always
matches the metrics rows written before it. A Ctrl-C during a save or a restore waits until it is
done (``scaling.interrupts.deferred``): interrupted inside, orbax's writer threads run on into
interpreter shutdown and print pages of tracebacks.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Optional

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from scaling.errors import ScalingError
from scaling.interrupts import deferred

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
        with deferred():
            self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                            meta=ocp.args.JsonSave(meta)), force=True)
            self.manager.wait_until_finished()

    def restore(self, step: int, like_state: Any) -> tuple[Any, dict]:
        """Restore into the structure, dtypes and shardings of ``like_state``."""
        with deferred():
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


class RunCheckpoints:
    """Per-run checkpoints of runs trained together (or of one run): run k's slice of the state
    and its own meta (step, data-loader position, run id, wall time) in its own run directory,
    so a run resumes whichever way it is trained next. Runs resume together only from one step
    (``scaling.lm.many`` groups them by ``latest_step``)."""

    def __init__(self, records: list, *, vmapped: bool):
        self.records, self.vmapped = records, vmapped
        self.by_dir = {r.run_dir: Checkpointer(r.run_dir) for r in records}

    def latest_step(self) -> Optional[int]:
        """The runs' common latest step; None when none has a checkpoint. ValueError when they differ."""
        steps = {self.by_dir[r.run_dir].latest_step() for r in self.records}
        if len(steps) > 1:
            raise ValueError(f"runs trained together must resume from one step, not {sorted(steps, key=str)}")
        return steps.pop()

    def save(self, step: int, state: Any, active: list, loader_states: list, wall_time_s: float) -> None:
        for r, loader in zip(active, loader_states):
            k = self.records.index(r)
            self.by_dir[r.run_dir].save(step, self._one(state, k), {"step": step, "loader": loader,
                                                                     "run_id": r.run_id, "wall_time_s": wall_time_s})

    def restore(self, step: int, state: Any) -> tuple[Any, list]:
        """(state restored into ``state``'s structure and shardings, per-run metas)."""
        like = self._one(state, 0)
        states, metas = [], []
        for r in self.records:
            restored, meta = self.by_dir[r.run_dir].restore(step, like)
            if meta.get("run_id", r.run_id) != r.run_id:
                raise ScalingError(f"{r.run_dir} holds a checkpoint of another config ({meta.get('run_id')}, this "
                                   f"is {r.run_id}); use another --out")
            states.append(restored)
            metas.append(meta)
        if not self.vmapped:
            return states[0], metas
        stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)
        shardings = jax.tree_util.tree_map(lambda x: x.sharding, state)
        return jax.device_put(stacked, shardings), metas

    def delete(self, record) -> None:
        self.by_dir[record.run_dir].delete_all()

    def _one(self, state: Any, k: int) -> Any:
        return jax.tree_util.tree_map(lambda x: x[k], state) if self.vmapped else state
