"""``protocol: adaptive``: which runs a sweep needs, replayed from its finished records.

Per group the lr search (``scaling.sweep.search``) runs at B_ref first (Definition 1 of Zhang et
al. 2024 needs its best final loss); once L* is known, per seed, a chain of chase searches goes
outwards from B_ref through the grid's batch sizes, each predicted from its neighbour's winner,
moved along the trend of the chain's last two winners (lr ~ B^k, ``search.trend``; the grid's
``lr_rule`` until two are known):

- upwards it stops where larger batch sizes are implied censored (a batch size where no lr
  reached L* within the cap and the best final loss was not at the top of the lattice: tokens to
  target grow with B, McCandlish et al. 2018) or where S(B) has flattened well past the knee
  (``search.flattened``); the batch sizes beyond are not run, and the search record says why;
- downwards every listed batch size is searched.

Everything here is a pure function of the run directories' summaries, so every worker, and
every rerun after an interruption, asks for the same runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

from scaling import rundir
from scaling.summary import OUTPACED, reference_loss
from scaling.analysis.definitions import cbs_from_curve
from scaling.sweep import search
from scaling.sweep.plan import CHASE, REFERENCE, midpoint, refine_candidates

USABLE = ("done", "censored")  # finished their budget or cap: their final loss counts


@dataclass
class Wanted:
    """The runs a sweep needs now, the specs that wait for a target, and the search record."""
    runs: list = field(default_factory=list)
    waiting: list = field(default_factory=list)
    record: dict = field(default_factory=dict)  # group -> what each search tried and why it stopped


def chase_outcome(summary: Optional[dict]) -> Optional[search.Outcome]:
    """A chase run's finished result for the search; None while unfinished (or failed: retried)."""
    if summary is None or summary.get("status") == "failed":
        return None
    if summary.get("status") == "diverged":
        return search.Outcome(loss=math.inf)
    if summary.get("status") == "done" and summary.get("steps_to_target") is not None:
        return search.Outcome(steps=float(summary["steps_to_target"]), loss=reference_loss(summary))
    if summary.get("censored_by") == OUTPACED:
        return search.Outcome()  # slower than the best so far: not comparable by loss
    return search.Outcome(loss=reference_loss(summary))


def reference_outcome(summaries: list) -> Optional[search.Outcome]:
    """One lr at B_ref over its seeds: their mean final loss (Definition 1)."""
    if any(s is None or s.get("status") == "failed" for s in summaries):
        return None
    losses = [reference_loss(s) for s in summaries if s.get("status") in USABLE]
    losses = [x for x in losses if x is not None]
    return search.Outcome(loss=sum(losses) / len(losses) if losses else math.inf)


class GroupCells:
    """A group's lattice and its plan indices by (batch size, lr index, seed)."""

    def __init__(self, plan, key: str):
        self.key = key
        specs = [(i, s) for i, s in enumerate(plan.runs) if s.group == key]
        self.lrs = sorted({s.lr for _, s in specs})
        self.index = {(s.batch_size, self.lrs.index(s.lr), s.seed): i for i, s in specs}
        self.phase = {s.batch_size: s.phase for _, s in specs}
        self.batches = sorted(self.phase)
        self.seeds = sorted({s.seed for _, s in specs})
        self.refine = set(refine_candidates(plan.grid.batch_sizes)) - set(plan.grid.batch_sizes) \
            if plan.grid.refine else set()  # midpoints a finished search may add (``refine``)


def wanted_runs(state, targets: dict) -> Wanted:
    """Every run the adaptive protocol needs now (``state``: a ``SweepState``)."""
    grid, out = state.plan.grid, Wanted()
    for g in state.plan.groups:
        cells = GroupCells(state.plan, g.key)
        rec = out.record[g.key] = {"lattice": cells.lrs, "reference": None, "chase": {}}
        ref_best = None
        if REFERENCE in cells.phase.values():
            ref = reference(state, cells, grid.reference_batch, out)
            rec["reference"] = _describe(ref, cells.lrs)
            ref_best = ref.best if ref.done else None
        t = targets.get(g.key)
        if t is None or "loss" not in t:
            out.waiting += [s for s in state.plan.runs if s.group == g.key and s.phase == CHASE]
            continue
        start = ref_best if ref_best is not None else search.start_index(cells.lrs, grid.lr_start)
        for seed in cells.seeds:
            rec["chase"][f"seed {seed}"] = _chains(state, cells, seed, float(t["loss"]), start, out)
    return out


def reference(state, cells: GroupCells, b_ref: int, out: Wanted) -> search.Search:
    def result(i, cap):
        runs = [state.run_for(cells.index[(b_ref, i, seed)], None) for seed in cells.seeds]
        out.runs += runs  # each lr is asked for once per replay
        return reference_outcome([rundir.read_summary(r.run_dir) for r in runs])

    start = search.start_index(cells.lrs, state.plan.grid.lr_start)
    return search.reference_search(len(cells.lrs), start, result)


def _chase(state, cells: GroupCells, batch: int, seed: int, target: float, predicted: int,
           out: Wanted) -> search.Search:
    def result(i, cap):
        run = state.run_for(cells.index[(batch, i, seed)], target, race_steps=cap)
        out.runs.append(run)
        return chase_outcome(rundir.read_summary(run.run_dir))

    return search.chase_search(len(cells.lrs), predicted, result)


def _chains(state, cells: GroupCells, seed: int, target: float, start: int, out: Wanted) -> dict:
    """The chase searches of one seed, outwards from B_ref (upwards from the smallest batch size
    when the target is explicit); returns the record of each batch size."""
    grid, n = state.plan.grid, len(cells.lrs)
    b_ref = grid.reference_batch if REFERENCE in cells.phase.values() else None
    chase = [b for b in cells.batches if cells.phase[b] == CHASE and b not in cells.refine]
    origin = b_ref if b_ref is not None else chase[0]
    up = [b for b in chase if b > origin or (b_ref is None and b == origin)]
    down = sorted((b for b in chase if b_ref is not None and b < b_ref), reverse=True)
    record: dict = {}
    measured: dict = {}  # batch size -> (S(B), winning index) of the finished searches
    finished = True
    for batches, upwards in ((up, True), (down, False)):
        best, prev, history, winners = start, origin, ([], []), []
        for k, b in enumerate(batches):
            rule = search.trend(winners, cells.lrs, grid.lr_rule)
            s = _chase(state, cells, b, seed, target, search.shifted(best, cells.lrs, prev, b, rule), out)
            record[f"B={b}"] = {**_describe(s, cells.lrs), "lr_rule": rule}
            if not s.done:
                finished = False
                break  # the next batch size's prediction needs this one's winner
            if s.reached:
                history[0].append(b)
                history[1].append(s.winner_steps)
                winners.append((b, s.best))
                measured[b] = (s.winner_steps, s.best)
            best, prev = (s.best if s.best is not None else best), b
            stop = _stop_upwards(s, n, history) if upwards else None
            if stop:
                for later in batches[k + 1:]:
                    record[f"B={later}"] = {"done": True, "not_run": stop}
                break
    if finished and cells.refine:
        if b_ref is not None:
            measured[b_ref] = (reference_steps(state, cells, b_ref, seed, target), start)
        _refine(state, cells, seed, target, measured, out, record)
    return record


def reference_steps(state, cells: GroupCells, b_ref: int, seed: int, target: float) -> Optional[float]:
    """S(B_ref) of one seed: the fewest steps to L* on the reference runs' own curves."""
    from scaling.sweep import export  # export reads sweeps (records -> protocol -> this module)

    found = []
    for i in range(len(cells.lrs)):
        if (b_ref, i, seed) not in cells.index:
            continue
        run = state.run_for(cells.index[(b_ref, i, seed)], None)
        summary = rundir.read_summary(run.run_dir)
        if summary is not None and summary.get("status") in USABLE:
            s = export.reference_steps(run.run_dir, summary, target)
            if s is not None:
                found.append(s)
    return min(found) if found else None


def _refine(state, cells: GroupCells, seed: int, target: float, measured: dict, out: Wanted, record: dict) -> None:
    """Searches at the midpoints (``plan.midpoint``) of the ``refine`` intervals nearest the CBS
    estimate of the measured S(B) (Definition 1 on the curve, from its smallest batch size)."""
    bs = sorted(b for b, (s, _) in measured.items() if s is not None)
    if len(bs) < 3:
        return
    est = cbs_from_curve(bs, [measured[b][0] for b in bs], bs[0])
    k = bs.index(est.lower) if est.lower in bs else len(bs) - 1
    order = sorted(range(len(bs) - 1), key=lambda i: (abs(i - k), i))  # the bracket first, then outwards
    for i in order[:state.plan.grid.refine]:
        m = midpoint(bs[i], bs[i + 1])
        if m is None or m not in cells.refine:
            continue
        s = _chase(state, cells, m, seed, target, measured[bs[i]][1], out)
        record[f"B={m}"] = {**_describe(s, cells.lrs), "refine": f"CBS estimate {est.cbs:.4g} in [{est.lower:g}, {est.upper:g}]"}


def _stop_upwards(s: search.Search, n: int, history: tuple) -> Optional[str]:
    """Why batch sizes above this one need not run, or None."""
    if not s.reached and s.best is not None and s.best < n - 1:
        return ("implied censored: no lr reached the target within the cap at a smaller batch size, "
                "and tokens to target grow with B (McCandlish et al. 2018)")
    if search.flattened(*history):
        return (f"S(B) flattened: each of the last {search.FLAT_DOUBLINGS} doublings cut it by less than "
                f"{1 - search.FLAT_RATIO:.0%}")
    return None


def _describe(s: search.Search, lrs: list) -> dict:
    return {"tried": [lrs[i] for i in s.tried], "asked": [lrs[i] for i in sorted(s.cells)],
            "race_steps": {str(lrs[i]): c for i, c in sorted(s.cells.items()) if c is not None},
            "best": lrs[s.best] if s.best is not None else None, "done": s.done, "reason": s.reason}
