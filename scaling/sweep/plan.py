"""Expand a grid into runs: (model, D) groups x batch sizes x lrs x seeds, each a full config.

Two phases (Zhang et al. 2024, Sec. 2 and Definition 1):

- ``reference`` runs: B = B_ref, every lr and seed, trained for D tokens with no target; they
  set the group's target L* (``protocol.definition1_target``);
- ``chase`` runs: every other batch size (every batch size when the target is explicit), with
  ``target_loss = L*`` and ``max_tokens = max_tokens_factor x D``; they stop at L* or are
  censored at the cap.

A run's identity is the hash of its config (``scaling.identity.run_id``), so a chase run's id exists
only once its group's target is known. Every config is built through the workload (which
rejects unknown keys and bad values) before anything runs.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Mapping, Optional

from scaling.config_io import set_dotted
from scaling.errors import ScalingError
from scaling.sweep.grid import DEFINITION1, WARMUP_KEY, Grid

REFERENCE, CHASE = "reference", "chase"
VALIDATION_TARGET = 1.0  # placeholder L* used to validate chase configs before targets exist
PARAMS_PROBE_TOKENS = 10**15  # D used only to build a config whose params are read


def deep_merge(a: Mapping, b: Mapping) -> dict:
    """``b`` merged into a copy of ``a`` (nested mappings merged, everything else replaced)."""
    out = copy.deepcopy(dict(a))
    for k, v in b.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


@dataclass(frozen=True)
class PlanGroup:
    """One (model, D) pair: the unit that has one target loss and one S(B) curve."""

    key: str  # "<model>@D<tokens>"
    model: str
    params: int
    tokens: int
    explicit_target: Optional[float]  # None: Definition 1 from the reference runs


@dataclass(frozen=True)
class RunSpec:
    """One run before its target is known: everything but ``target_loss`` is fixed."""

    group: str
    phase: str  # REFERENCE or CHASE
    batch_size: int
    lr: float
    seed: int
    max_tokens: Optional[int]
    spec: dict = field(repr=False)  # the config dict, without target_loss for chase runs

    @property
    def label(self) -> str:
        return f"{self.group} B={self.batch_size} lr={self.lr:g} seed={self.seed}"


@dataclass(frozen=True)
class Plan:
    grid: Grid
    groups: tuple  # of PlanGroup
    runs: tuple  # of RunSpec

    def group(self, key: str) -> PlanGroup:
        return next(g for g in self.groups if g.key == key)


def _axis(workload, name: str) -> str:
    try:
        return workload.axis_keys[name]
    except KeyError:
        raise ScalingError(f"workload {workload.name!r} has no {name!r} axis") from None


def _spec(grid: Grid, workload, fragment: dict, *, batch: int, lr: float, seed: int, tokens: int,
          max_tokens: Optional[int], rules: Optional[dict] = None) -> dict:
    spec = deep_merge(grid.base, fragment)
    for key, value in grid.rule_values(batch, rules).items():
        set_dotted(spec, key, copy.deepcopy(value))
    set_dotted(spec, _axis(workload, "batch_size"), batch)
    set_dotted(spec, _axis(workload, "lr"), lr)
    set_dotted(spec, _axis(workload, "seed"), seed)
    set_dotted(spec, _axis(workload, "tokens"), tokens)
    if grid.warmup_fraction is not None:
        set_dotted(spec, WARMUP_KEY[grid.workload], int(round(grid.warmup_fraction * tokens)))
    if max_tokens is not None:
        set_dotted(spec, _axis(workload, "max_tokens"), max_tokens)
    return spec


def build(workload, spec: dict, what: str):
    """The workload's typed config; errors name the run they belong to."""
    try:
        return workload.build_config(spec)
    except ScalingError as e:
        raise ScalingError(f"{what}: {e}") from None


def with_target(workload, run: RunSpec, target: Optional[float], race_steps: Optional[float] = None) -> dict:
    """The run's config dict with its target L* (and, racing, the steps to beat) set."""
    spec = copy.deepcopy(run.spec)
    if target is not None:
        set_dotted(spec, _axis(workload, "target_loss"), float(target))
    if race_steps is not None:
        set_dotted(spec, _axis(workload, "race_steps"), float(race_steps))
    return spec


def expand(grid: Grid, workload) -> Plan:
    """Every group and run of ``grid``; every config is built (validated) by the workload."""
    if workload.name != grid.workload:
        raise ScalingError(f"grid names workload {grid.workload!r}, got {workload.name!r}")
    groups, runs = [], []
    for m in grid.models:
        probe = _spec(grid, workload, m.fragment, batch=grid.batch_sizes[0], lr=grid.lrs[0],
                      seed=grid.seeds[0], tokens=PARAMS_PROBE_TOKENS, max_tokens=None)
        params = int(workload.params(build(workload, probe, f"model {m.name!r}")))
        sizes = list(m.tokens) + [int(round(r * params)) for r in m.tokens_per_param]
        explicit = m.target if m.target is not None else (
            None if grid.target == DEFINITION1 else grid.target)
        for tokens in sorted(dict.fromkeys(sizes)):
            if tokens <= 0:
                raise ScalingError(f"model {m.name!r}: data size rounds to {tokens} tokens")
            key = f"{m.name}@D{tokens}"
            if any(g.key == key for g in groups):
                continue
            groups.append(PlanGroup(key=key, model=m.name, params=params, tokens=tokens, explicit_target=explicit))
            batches = sorted(set(grid.batch_sizes) | ({grid.reference_batch} if explicit is None else set())
                             | (set(refine_candidates(grid.batch_sizes)) if grid.refine else set()))
            cap = int(round(grid.max_tokens_factor * tokens))
            for b in batches:
                phase = REFERENCE if explicit is None and b == grid.reference_batch else CHASE
                for lr in (m.lrs or grid.lrs):
                    for seed in (m.seeds or grid.seeds):
                        max_tokens = None if phase == REFERENCE else cap
                        spec = _spec(grid, workload, m.fragment, batch=b, lr=lr, seed=seed,
                                     tokens=tokens, max_tokens=max_tokens, rules=m.by_batch_size)
                        run = RunSpec(group=key, phase=phase, batch_size=b, lr=lr, seed=seed,
                                      max_tokens=max_tokens, spec=spec)
                        check = with_target(workload, run, explicit if explicit is not None else
                                            (None if phase == REFERENCE else VALIDATION_TARGET))
                        build(workload, check, f"run {run.label}")
                        runs.append(run)
    if not runs:
        raise ScalingError(f"{grid.source}: the grid expands to no runs")
    return Plan(grid=grid, groups=tuple(groups), runs=tuple(runs))


def midpoint(lo: int, hi: int) -> Optional[int]:
    """The geometric midpoint of two batch sizes, on multiples of lo/2 (so the batch stays
    divisible like its neighbours: 1.5 x lo between doublings); None when none lies between."""
    q = max(1, lo // 2)
    m = int(round((lo * hi) ** 0.5 / q)) * q
    return m if lo < m < hi else None


def refine_candidates(batch_sizes) -> list:
    """Batch sizes ``refine`` may add (adaptive protocol): the midpoints of adjacent listed ones."""
    bs = sorted(set(batch_sizes))
    return [m for m in (midpoint(a, b) for a, b in zip(bs, bs[1:])) if m is not None]


def token_cost(plan: Plan) -> dict:
    """Tokens the sweep will train: exact for reference runs, an upper bound (cap) for chase runs."""
    ref = sum(plan.group(r.group).tokens for r in plan.runs if r.phase == REFERENCE)
    chase = sum(r.max_tokens for r in plan.runs if r.phase == CHASE)
    return {"reference_tokens": ref, "chase_tokens_max": chase, "total_tokens_max": ref + chase,
            "runs": len(plan.runs), "reference_runs": sum(r.phase == REFERENCE for r in plan.runs),
            "chase_runs": sum(r.phase == CHASE for r in plan.runs), "groups": len(plan.groups)}
