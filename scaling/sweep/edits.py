"""Which grid may run in an existing sweep directory: the one in its ``sweep.json``, or a pure
extension of it (docs/design.md, "Sweep directory").

A sweep directory holds the runs of one plan, so that ``scaling status``, ``steps`` and ``cbs``
never count runs of another. A grid pointed at a directory whose manifest holds another grid is
accepted only when every run the stored grid plans is still planned, with the same identity, and
nothing that sets or reads a target changes. That allows exactly:

- new (N, D) groups: models, data sizes (``models``, ``model_grid``, ``tokens``,
  ``tokens_per_param`` extended);
- new batch sizes in existing groups (``batch_sizes`` extended), which only add chase runs;
- a new ``description`` or ``together`` (how runs are grouped, not what they compute).

Everything else is refused with one line naming the first difference: another name or workload,
a dropped batch size, data size or model, a changed ``base`` or model config (other run ids), and
new lrs or seeds in an existing group (its frozen L* was the best over the old lrs only, and the
implied-censoring decisions already recorded counted every lr at a batch size). To run such a
grid, give another ``--out``.

Accepted grids are listed in the manifest (``grids``: the sha256 of each, in order), so a worker
still running an earlier grid of the directory never rewrites the manifest back to it
(``SweepState.write_manifest``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Optional

from scaling.errors import ScalingError
from scaling.sweep.grid import GRID as GRID_PROTOCOL

# Grid fields (``scaling.sweep.grid.Grid``) that must not change; the models, data sizes and batch
# sizes are compared run by run; ``description`` and ``together`` never change what a run computes.
FIXED_FIELDS = ("workload", "base", "lrs", "seeds", "reference_batch", "target", "max_tokens_factor",
                "warmup_fraction", "by_batch_size", "protocol", "lr_rule", "lr_start", "refine")


def grid_sha256(raw: dict) -> str:
    """The sha256 of a grid's canonical JSON (the manifest's ``grid``)."""
    return hashlib.sha256(json.dumps(raw, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _stored_plan(manifest: dict, workload):
    from scaling.sweep.grid import parse_grid, workload_top_keys
    from scaling.sweep.plan import expand

    raw = manifest.get("grid")
    if not isinstance(raw, dict):
        return None
    if "protocol" not in manifest and "protocol" not in raw:
        # a manifest from before protocols (it names its protocol since): those sweeps trained the grid
        raw = {**raw, "protocol": GRID_PROTOCOL}
    try:
        grid = parse_grid(raw, source="sweep.json", top_keys=workload_top_keys(workload.name),
                          default_name=str(manifest.get("name", "sweep")))
        return expand(grid, workload)
    except ScalingError:
        return None


def difference(manifest: dict, plan, workload) -> Optional[str]:
    """Why ``plan`` may not run in the directory whose manifest is ``manifest`` (None: it may)."""
    if not manifest or "grid" not in manifest:
        return None  # a new directory (or one whose manifest predates the grid record)
    from scaling.store import to_json

    raw = json.loads(to_json(plan.grid.raw, indent=None))
    if raw == manifest["grid"]:
        return None
    if manifest.get("name") not in (None, plan.grid.name):
        return f"it holds sweep {manifest['name']!r}, this grid is {plan.grid.name!r}"
    if manifest.get("workload") not in (None, plan.grid.workload):
        return f"it holds a {manifest['workload']!r} sweep, this grid is {plan.grid.workload!r}"
    old = _stored_plan(manifest, workload)
    if old is None:
        return "its grid no longer expands with this version, so the two cannot be compared"
    for key in FIXED_FIELDS:
        before, after = getattr(old.grid, key), getattr(plan.grid, key)
        if before != after:
            return f"{key} changed from {before!r} to {after!r}"
    groups = {g.key: g for g in plan.groups}
    for g in old.groups:
        new = groups.get(g.key)
        if new is None:
            return f"group {g.key} (N={g.params}, D={g.tokens}) is dropped"
        if (new.params, new.tokens, new.explicit_target) != (g.params, g.tokens, g.explicit_target):
            return f"group {g.key} changes (params, tokens or target)"
    runs = {(r.group, r.phase, r.batch_size, r.lr, r.seed): r for r in plan.runs}
    for r in old.runs:
        new = runs.get((r.group, r.phase, r.batch_size, r.lr, r.seed))
        if new is None:
            return f"run {r.label} ({r.phase}) is dropped"
        if new.spec != r.spec or new.max_tokens != r.max_tokens:
            return f"run {r.label} changes its config (another run id)"
    old_cells = {(r.group, r.lr, r.seed) for r in old.runs}
    old_groups = {g.key for g in old.groups}
    for r in plan.runs:
        if r.group in old_groups and (r.group, r.lr, r.seed) not in old_cells:
            return f"group {r.group} gains lr {r.lr:g} seed {r.seed} (its target L* and censoring were decided without it)"
    return None


def check(manifest: dict, plan, workload, root) -> None:
    """``ScalingError`` (one line) unless ``plan`` may run in the sweep directory ``root``."""
    why = difference(manifest, plan, workload)
    if why is not None:
        raise ScalingError(f"{root} holds the sweep of another grid ({why}); a sweep directory holds one plan: "
                           f"give another --out, or the grid stored in {root}/sweep.json (extensions may only "
                           "add batch sizes, data sizes or models)")
