"""The two-phase protocol on disk: targets per group, run ids, and what is left to run.

Definition 1 (Zhang et al. 2024): the target L* of a (N, D) group is the best final
validation loss over the tuning grid at the reference batch B_ref after D tokens, on EWA
weights when EWA is on (``final_eval_loss_ewa`` if recorded, else ``final_eval_loss``).
With several seeds, each lr's losses are averaged over seeds first. Diverged and failed
reference runs do not count. A target is computed once every reference run of the group has
finished, then frozen in the sweep manifest (``sweep.json``): chase-run ids include L*, so
a target never changes under runs already started.

Layout of a sweep directory::

    runs/<sweep>/sweep.json        grid, groups, targets (atomically rewritten)
    runs/<sweep>/events.jsonl      start/finish events of every worker (append-only)
    runs/<sweep>/locks/            claims (``scaling.sweep.locks``)
    runs/<sweep>/<run-id>/         run directories (``scaling.rundir``), plus
                                   sweep_run.json (group, phase, batch size, lr, seed)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from scaling import rundir
from scaling.errors import ScalingError
from scaling.store import append_jsonl, atomic_write_json, read_json
from scaling.identity import run_id
from scaling.summary import reference_loss
from scaling.sweep import adaptive, edits
from scaling.sweep.grid import ADAPTIVE
from scaling.sweep.plan import REFERENCE, Plan, RunSpec, build, with_target

MANIFEST = "sweep.json"
EVENTS = "events.jsonl"
LOCKS = "locks"
SEARCH = "search.json"  # adaptive: the lr searches and the runs they wait for
RUN_INFO = "sweep_run.json"  # in each run directory: its group, phase and grid cell
USABLE_FOR_TARGET = ("done", "censored")  # finished their D tokens (no target, so never censored)


@dataclass(frozen=True)
class Run:
    """A run whose identity is known: its spec, config, id and directory."""

    spec: RunSpec
    run_id: str
    config: object
    target: Optional[float]
    run_dir: Path

    @property
    def label(self) -> str:
        return f"{self.run_id} {self.spec.label}"


def definition1_target(summaries: list) -> tuple:
    """(L*, winning lr, reason) from the reference runs' summaries (Zhang et al. 2024, Def. 1).

    Per lr, the mean over seeds of the final (EWA) loss; L* is the minimum over lrs. Runs that
    diverged or failed are left out; returns (None, None, reason) if nothing is usable.
    """
    by_lr: dict = {}
    for s in summaries:
        if s.get("status") not in USABLE_FOR_TARGET:
            continue
        loss = reference_loss(s)
        if loss is not None:
            by_lr.setdefault(float(s["lr"]), []).append(loss)
    if not by_lr:
        counts = {}
        for s in summaries:
            counts[s.get("status")] = counts.get(s.get("status"), 0) + 1
        return None, None, ("no usable reference run (" +
                            ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) + ")")
    means = {lr: sum(v) / len(v) for lr, v in by_lr.items()}
    best = min(means, key=means.get)
    return means[best], best, "definition1"


class SweepState:
    """A plan bound to its directory: knows targets, run ids and statuses on disk."""

    def __init__(self, plan: Plan, workload, root: Path):
        self.plan = plan
        self.workload = workload
        self.root = Path(root)
        self._runs: dict = {}  # (RunSpec index, target, race steps) -> Run (configs are built once)
        self.search_record: dict = {}  # adaptive: what each lr search tried and why it stopped

    # --- manifest ----------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def read_manifest(self) -> dict:
        try:
            return read_json(self.manifest_path)
        except FileNotFoundError:
            return {}
        except ValueError:
            raise ScalingError(f"{self.manifest_path}: corrupt manifest") from None

    def write_manifest(self, targets: dict) -> None:
        """Rewrite sweep.json (atomically), keeping targets other workers recorded. ``grids`` lists
        the sha256 of every grid accepted in this directory (``scaling.sweep.edits``), in order: a
        worker of an earlier one (still running when its grid was extended) adds its targets to the
        newer plan and never writes its own back."""
        old = self.read_manifest()
        known = dict(old.get("targets", {}))
        known.update({k: v for k, v in targets.items() if v is not None})
        raw = _jsonable(self.plan.grid.raw)
        mine = edits.grid_sha256(raw)
        accepted = list(old.get("grids") or ([edits.grid_sha256(old["grid"])] if isinstance(old.get("grid"), dict) else []))
        if mine in accepted[:-1] and old.get("grid") != raw:
            doc = {**old, "targets": known, "groups": [_with_target(g, known.get(g.get("key"))) for g in old["groups"]]}
        else:
            doc = self._manifest(raw, known, accepted if mine in accepted else accepted + [mine])
        if old and {k: v for k, v in old.items() if k != "updated"} == \
                {k: v for k, v in doc.items() if k != "updated"}:
            return
        atomic_write_json(self.manifest_path, {**doc, "updated": time.time()})

    def _manifest(self, raw: dict, known: dict, grids: list) -> dict:
        groups = []
        for g in self.plan.groups:
            t = known.get(g.key)
            groups.append({"key": g.key, "model": g.model, "params": g.params, "tokens": g.tokens,
                           "target": t["loss"] if t else g.explicit_target,
                           "target_rule": "explicit" if g.explicit_target is not None else "definition1",
                           "reference_lr": t.get("lr") if t else None})
        return {"name": self.plan.grid.name, "workload": self.plan.grid.workload,
                "grid_file": self.plan.grid.source, "grid": raw, "grids": grids,
                "reference_batch": self.plan.grid.reference_batch,
                "max_tokens_factor": self.plan.grid.max_tokens_factor,
                "groups": groups, "targets": known,
                "protocol": self.plan.grid.protocol,
                "runs": [] if self.plan.grid.protocol == ADAPTIVE else [_cell(r) for r in self.plan.runs]}

    # --- runs --------------------------------------------------------------------------------
    def run_for(self, index: int, target: Optional[float], race_steps: Optional[float] = None) -> Run:
        key = (index, target, race_steps)
        if key not in self._runs:
            spec = self.plan.runs[index]
            d = with_target(self.workload, spec, target, race_steps)
            config = build(self.workload, d, f"run {spec.label}")
            rid = run_id(self.workload.name, config)
            self._runs[key] = Run(spec=spec, run_id=rid, config=config, target=target,
                                  run_dir=self.root / rid)
        return self._runs[key]

    def targets(self, *, record: bool = True) -> dict:
        """group key -> {"loss", "lr", "rule"} or None (not known yet) / {"blocked": reason}.

        Frozen targets come from the manifest; new Definition-1 targets are computed when all
        of a group's reference runs have finished, and recorded (``record``).
        """
        frozen = self.read_manifest().get("targets", {})
        out, new = {}, {}
        for g in self.plan.groups:
            if g.explicit_target is not None:
                out[g.key] = {"loss": float(g.explicit_target), "lr": None, "rule": "explicit"}
                continue
            if g.key in frozen and frozen[g.key].get("loss") is not None:
                out[g.key] = frozen[g.key]
                continue
            summaries = self.reference_summaries(g.key)
            if summaries is None:
                out[g.key] = None
                continue
            loss, lr, why = definition1_target(summaries)
            if loss is None:
                out[g.key] = {"blocked": why}
            else:
                out[g.key] = new[g.key] = {"loss": loss, "lr": lr, "rule": "definition1"}
        if record:  # new targets, or a grid edited since (write_manifest skips an unchanged doc)
            self.write_manifest(new)
        return out

    def reference_summaries(self, group: str) -> Optional[list]:
        """The summaries of the group's reference runs that set L*, or None until all finished:
        every reference run (grid), the runs of its finished lr search (adaptive)."""
        if self.plan.grid.protocol == ADAPTIVE:
            cells = adaptive.GroupCells(self.plan, group)
            wanted = adaptive.Wanted()
            found = adaptive.reference(self, cells, self.plan.grid.reference_batch, wanted)
            if not found.done:
                return None
            return [rundir.read_summary(r.run_dir) for r in wanted.runs]
        out = []
        for i, spec in enumerate(self.plan.runs):
            if spec.group == group and spec.phase == REFERENCE:
                s = rundir.read_summary(self.run_for(i, None).run_dir)
                if s is None:
                    return None
                out.append(s)
        return out

    def known_runs(self, targets: Optional[dict] = None, *, record: bool = True) -> tuple:
        """(runs with known ids, specs still waiting for their group's target); ``record``: write
        an adaptive sweep's search.json."""
        targets = self.targets() if targets is None else targets
        if self.plan.grid.protocol == ADAPTIVE:
            wanted = adaptive.wanted_runs(self, targets)
            self.search_record = wanted.record
            unique = list({r.run_id: r for r in wanted.runs}.values())
            if record:
                self._write_search(unique)
            return unique, wanted.waiting
        known, waiting = [], []
        for i, spec in enumerate(self.plan.runs):
            if spec.phase == REFERENCE:
                known.append(self.run_for(i, None))
                continue
            t = targets.get(spec.group)
            if t is None or "loss" not in t:
                waiting.append(spec)
            else:
                known.append(self.run_for(i, t["loss"]))
        return known, waiting

    def _write_search(self, runs: list) -> None:
        """search.json: what each lr search tried and why it stopped, and the runs it waits for."""
        doc = {"protocol": ADAPTIVE, "groups": self.search_record,
               "pending": [{**_cell(r.spec), "target": r.target} for r in runs
                           if rundir.read_status(r.run_dir) is None]}
        path = self.root / SEARCH
        try:
            if read_json(path) == doc:
                return
        except (FileNotFoundError, ValueError):
            pass
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, doc)

    # --- events ------------------------------------------------------------------------------
    def log_event(self, event: str, run: Run, worker: str, **extra) -> None:
        append_jsonl(self.root / EVENTS, [{"event": event, "run_id": run.run_id, "worker": worker,
                                           "time": time.time(), **extra}])


def _with_target(group: dict, target: Optional[dict]) -> dict:
    """A manifest group entry with its Definition-1 target, once known."""
    if not target or "loss" not in target or group.get("target_rule") == "explicit":
        return group
    return {**group, "target": target["loss"], "reference_lr": target.get("lr")}


def _cell(r: RunSpec) -> dict:
    return {"group": r.group, "phase": r.phase, "batch_size": r.batch_size, "lr": r.lr, "seed": r.seed,
            "max_tokens": r.max_tokens}


def _jsonable(obj):
    from scaling.store import to_json
    import json

    return json.loads(to_json(obj, indent=None))
