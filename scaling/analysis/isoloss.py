"""Steps to a target loss read off a loss grid at several data sizes (iso-loss), and the CBS from them.

A loss grid with runs at several D for each (N, B) gives, at each batch size, the best final loss
over the learning rates tried at each D (assumption: the optimal lr per run, as S(B) is the
minimum over the tuning grid in Zhang et al. 2024). Where that best loss falls through the target
L* between D_i and D_i+1, the tokens to target D*(B) are interpolated linearly in log D against
loss (assumption: loss decreases monotonically with D in between; a decrease that is broken is
warned about). Each run is trained to its own budget D, so D*(B) is the budget at which a run
at batch B ends at L*, Definition 1's reading of D (Zhang et al. 2024). S(B) = D*(B) / (B T).

Such data often need more tokens again below some batch size: B_opt, the batch size with the
fewest tokens to target, is the vertex of the parabola in (log B, log D*) through the smallest
D*(B) and its two neighbours (the smallest batch when the fewest tokens are there). The step
model S = S_min (1 + B_noise / B) (McCandlish et al. 2018), whose tokens only grow with B, is
fitted only at B >= B_opt, and B_opt is reported beside the CBS, never as it. Each (N, L*) is a
group whose ``tokens`` is D*(B_ref), B_ref the smallest batch size used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from scaling.analysis.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, DEFAULT_SEED
from scaling.analysis.cbs import CBSResult, critical_batch_sizes
from scaling.analysis.definitions import DEFAULT_OVERHEAD
from scaling.analysis.lossgrid import LossGrid
from scaling.analysis.steps_table import MIN_BATCH_SIZES, Group, StepsTable, _fmt
from scaling.errors import ScalingError

MIN_DATA_SIZES = 2
ASSUMPTIONS = (
    "each run trained to its own budget D; tokens to target D*(B) is the budget at which a run at batch B "
    "ends at the target loss",
    "optimal lr per run: at each (B, D) the lowest final loss over the learning rates tried",
    "loss decreases monotonically with D between the two data sizes that bracket the target; D*(B) is "
    "interpolated linearly in log D against loss",
    "steps S(B) = D*(B) / (B x seq_len); the step model is fitted only at B >= B_opt, the batch size with the "
    "fewest tokens to target",
)


@dataclass(frozen=True)
class IsoLossGroup:
    """Tokens and steps to one target loss per batch size, for one model size."""

    params: float
    target_loss: float
    seq_len: float
    batch_sizes: tuple
    tokens_to_target: tuple
    steps: tuple
    best_lr: tuple
    b_opt: float
    b_opt_at_edge: bool
    used: tuple            # batch size at or above B_opt: in the step-model fit
    warnings: tuple

    def rows(self) -> list:
        return [{"params": self.params, "tokens_to_target": d, "batch_size": b, "steps": s, "seq_len": self.seq_len,
                 "target_loss": self.target_loss, "best_lr": lr, "used": u}
                for b, d, s, lr, u in zip(self.batch_sizes, self.tokens_to_target, self.steps, self.best_lr,
                                          self.used)]


@dataclass(frozen=True)
class IsoLossResult:
    groups: tuple          # IsoLossGroup, one per (params, target) that gives a CBS
    cbs: CBSResult
    warnings: tuple
    assumptions: tuple = ASSUMPTIONS

    def b_opt(self, params: float, target_loss: float) -> Optional[float]:
        for g in self.groups:
            if g.params == params and g.target_loss == target_loss:
                return g.b_opt
        return None

    def to_dict(self) -> dict:
        d = self.cbs.to_dict()
        by_key = {(g.params, g.target_loss): g for g in self.groups}
        for gd in d["groups"]:
            iso = by_key[(gd["params"], gd["target_loss"])]
            gd["b_opt"] = iso.b_opt
            gd["b_opt_at_edge"] = iso.b_opt_at_edge
            gd["b_opt_definition"] = "batch size with the fewest tokens to the target loss (iso-loss); not the CBS"
        d["steps_table"] = [r for g in self.groups for r in g.rows()]
        d["assumptions"] = list(self.assumptions)
        d["warnings"] = list(self.warnings)
        return d


def crossing_tokens(tokens: Sequence[float], losses: Sequence[float], target: float) -> tuple:
    """(D*, problem): D at which ``losses`` (ascending ``tokens``) first fall to ``target``,
    interpolated linearly in log D; D* is None with a reason when no bracket exists."""
    D, L = np.asarray(tokens, float), np.asarray(losses, float)
    if L[0] <= target:
        return None, f"already at the target with the smallest D {D[0]:.4g}"
    below = np.flatnonzero(L <= target)
    if not len(below):
        return None, f"never reaches the target (best loss {L.min():.5g} at D up to {D[-1]:.4g})"
    i = int(below[0])
    f = (L[i - 1] - target) / (L[i - 1] - L[i])
    return float(np.exp(np.log(D[i - 1]) + f * (np.log(D[i]) - np.log(D[i - 1])))), None


def vertex_batch(batch_sizes, tokens) -> tuple:
    """(B_opt, at_edge): vertex of the parabola in (log B, log D*) through the fewest tokens to
    target and its neighbours; the smallest/largest batch when the fewest tokens sit there."""
    bs = np.asarray(batch_sizes, float)
    x, y = np.log(bs), np.log(np.asarray(tokens, float))
    k = int(np.argmin(y))
    if k == 0 or k == len(x) - 1:
        return float(bs[k]), True
    a, b, _ = np.polyfit(x[k - 1:k + 2], y[k - 1:k + 2], 2)
    return (float(np.exp(-b / (2 * a))) if a > 0 else float(bs[k])), False


def iso_loss_groups(grid: LossGrid, target_losses: Sequence[float]) -> tuple:
    """(IsoLossGroups, warnings) for every model size and target loss."""
    targets = [float(t) for t in target_losses]
    if not targets or any(not (np.isfinite(t) and t > 0) for t in targets):
        raise ScalingError(f"--target-loss must be positive numbers, got {target_losses}")
    by_params: dict = {}
    for g in grid.groups:
        by_params.setdefault(g.params, []).append(g)
    out, warnings = [], []
    for params in sorted(by_params):
        members = sorted(by_params[params], key=lambda g: g.tokens)
        name = f"params={_fmt(params)}"
        if len(members) < MIN_DATA_SIZES:
            raise ScalingError(f"{name} has losses at {len(members)} data size(s); reading tokens to a target "
                               f"loss needs at least {MIN_DATA_SIZES}")
        seqs = {g.seq_len for g in members}
        if None in seqs or len(seqs) > 1:
            raise ScalingError(f"{name}: iso-loss steps need one seq_len per model size (steps = tokens / "
                               f"(B x seq_len)); the loss grid has {sorted(str(s) for s in seqs)}")
        seq = seqs.pop()
        # best loss over lr at each (B, D)
        best: dict = {}
        for g in members:
            for b in np.unique(g.batch_sizes):
                cell = g.batch_sizes == b
                i = np.flatnonzero(cell)[np.argmin(g.losses[cell])]
                best.setdefault(float(b), []).append((g.tokens, float(g.losses[i]), float(g.lrs[i])))
        for target in targets:
            gname = f"{name} target {target:g}"
            rows, notes = [], []
            for b in sorted(best):
                series = sorted(best[b])
                D, L, lrs = zip(*series)
                if len(D) < MIN_DATA_SIZES:
                    notes.append(f"batch {b:g}: losses at one data size only")
                    continue
                if np.any(np.diff(L) > 0):
                    warnings.append(f"{gname}: at batch {b:g} the best loss does not fall monotonically with D")
                d_star, problem = crossing_tokens(D, L, target)
                if d_star is None:
                    notes.append(f"batch {b:g}: {problem}")
                    continue
                j = int(np.searchsorted(D, d_star))
                rows.append((b, d_star, d_star / (b * seq), lrs[min(j, len(lrs) - 1)]))
            warnings.extend(f"{gname}: {n}; left out" for n in notes)
            if len(rows) < MIN_BATCH_SIZES:
                warnings.append(f"{gname}: {len(rows)} batch size(s) reach the target within the data sizes "
                                f"run; no CBS")
                continue
            B, Dt, S, lr = (tuple(v) for v in zip(*rows))
            b_opt, edge = vertex_batch(B, Dt)
            used = tuple(b >= b_opt * (1 - 1e-9) for b in B)
            if edge and b_opt == B[-1]:
                warnings.append(f"{gname}: tokens to target still fall at the largest batch {B[-1]:g}; B_opt lies "
                                f"beyond it and no batch size above B_opt is left for the step model")
                continue
            if sum(used) < MIN_BATCH_SIZES:
                warnings.append(f"{gname}: only {sum(used)} batch size(s) at or above B_opt {b_opt:.4g}; no CBS")
                continue
            out.append(IsoLossGroup(params=params, target_loss=target, seq_len=seq, batch_sizes=B,
                                    tokens_to_target=Dt, steps=S, best_lr=lr, b_opt=b_opt, b_opt_at_edge=edge,
                                    used=used, warnings=()))
    return tuple(out), warnings


def iso_loss_cbs(grid: LossGrid, target_losses: Sequence[float], *, reference_batch: Optional[float] = None,
                 overhead: float = DEFAULT_OVERHEAD, model: str = "hyperbola",
                 n_resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
                 seed: int = DEFAULT_SEED) -> IsoLossResult:
    """CBS (Zhang et al. 2024 Def. 1) per (model size, target loss) from iso-loss steps at B >= B_opt."""
    groups, warnings = iso_loss_groups(grid, target_losses)
    if not groups:
        raise ScalingError("no (model size, target loss) gives a CBS: "
                           + "; ".join(warnings[-3:] or ["no batch size reaches the target"]))
    table_groups = []
    for g in groups:
        keep = [i for i, u in enumerate(g.used) if u]
        B = np.array([g.batch_sizes[i] for i in keep], float)
        ref = float(B.min()) if reference_batch is None else float(reference_batch)
        tokens = float(np.exp(np.interp(np.log(ref), np.log(B), np.log([g.tokens_to_target[i] for i in keep]))))
        table_groups.append(Group(params=g.params, tokens=tokens, batch_sizes=B,
                                  steps=np.array([g.steps[i] for i in keep], float),
                                  replicates=tuple((g.steps[i],) for i in keep),
                                  best_lr=tuple(g.best_lr[i] for i in keep), seq_len=g.seq_len,
                                  target_loss=g.target_loss))
    order = sorted(range(len(groups)), key=lambda i: (table_groups[i].params, table_groups[i].tokens))
    table = StepsTable(groups=tuple(table_groups[i] for i in order), sha256=grid.sha256, source=grid.source,
                       warnings=tuple(grid.warnings) + tuple(warnings))
    result = critical_batch_sizes(table, reference_batch=reference_batch, overhead=overhead, model=model,
                                  n_resamples=n_resamples, confidence=confidence, seed=seed)
    return IsoLossResult(groups=tuple(groups[i] for i in order), cbs=result, warnings=tuple(result.warnings))
