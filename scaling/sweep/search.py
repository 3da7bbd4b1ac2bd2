"""The adaptive protocol's learning-rate search: pure decisions from finished results.

Under ``protocol: adaptive`` the grid's ``lrs`` are a lattice (indices 0 .. n-1, sorted), its ends
the search bounds. A search runs in waves; each wave is decided only from the finished results
of the waves before it, so replaying the search from the records on disk gives the same runs
whatever the order in which they finished, with one worker or many, after kill -9 or not:

- reference batch B_ref (every seed of an lr counts as one result, their mean final loss,
  Zhang et al. 2024 Definition 1): the first wave is the start lr and its two neighbours; each
  next wave is the untried neighbours of the best final loss; it stops when the best is
  interior (both neighbours tried and worse) or at a bound;
- a chase batch size B (target L*, per seed): the first wave is the predicted winner alone (the
  neighbouring batch size's winner, shifted by ``lr ~ B^lr_rule``); each next wave is the
  untried neighbours of the fastest run to L*, raced: capped at the fastest steps to target so
  far (``race_steps``: a run still above L* at the first evaluation at or after it stops,
  censored as outpaced, since its steps to target could only be larger). With no run at the
  target yet, the search moves towards the lowest final loss instead (the lr most likely to get
  there), and a batch size whose best is interior without any run at the target is censored at
  every lr that could matter.

S(B) is the minimum over the lrs tried; what the search skipped are lrs whose neighbours towards
the best were already slower (or censored), which a unimodal S(lr) -- the assumption every lr
grid makes -- cannot hold the minimum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Sequence

INTERIOR, AT_LOW, AT_HIGH = "interior", "at the low bound", "at the high bound"
FLAT_RATIO = 0.9  # a doubling of B that cuts S(B) by less than 10% is past the knee ...
FLAT_DOUBLINGS = 2  # ... and this many in a row end the chase towards larger batches


@dataclass(frozen=True)
class Outcome:
    """What one finished lr says: steps to the target (None: not reached) and the final loss
    (inf when diverged; None when not comparable, e.g. stopped by a race)."""

    steps: Optional[float] = None
    loss: Optional[float] = None


@dataclass(frozen=True)
class Search:
    """The state of one lr search: every cell it asked for (lattice index -> race cap, None for
    none), whether it is done, its best index and why it stopped or what it waits for."""

    cells: Mapping[int, Optional[float]]
    done: bool
    best: Optional[int]
    reason: str
    winner_steps: Optional[float] = None  # steps to target of the best (chase searches)
    tried: tuple = field(default=())

    @property
    def reached(self) -> bool:
        return self.winner_steps is not None


def start_index(lrs: Sequence[float], lr_start: Optional[float]) -> int:
    """The lattice index nearest ``lr_start`` in log space (default: the geometric middle)."""
    target = math.log(lr_start) if lr_start else (math.log(lrs[0]) + math.log(lrs[-1])) / 2
    return min(range(len(lrs)), key=lambda i: (abs(math.log(lrs[i]) - target), i))


def shifted(index: int, lrs: Sequence[float], b_from: float, b_to: float, rule: float) -> int:
    """The prediction at batch ``b_to`` from the winner ``index`` at ``b_from``: lr ~ B^rule, on
    the lattice (its mean spacing in log lr), clipped to its bounds."""
    if rule == 0 or len(lrs) < 2:
        return index
    spacing = (math.log(lrs[-1]) - math.log(lrs[0])) / (len(lrs) - 1)
    moved = index + round(rule * math.log(b_to / b_from) / spacing)
    return max(0, min(len(lrs) - 1, moved))


TREND_RANGE = (0.0, 1.0)  # lr ~ B^k between constant (Adam at large B) and linear scaling (SGD)


def trend(winners: Sequence[tuple], lrs: Sequence[float], default: float) -> float:
    """The exponent k of lr ~ B^k through the last two (batch size, winning index) of a chain,
    clipped to TREND_RANGE; ``default`` until two winners are known."""
    if len(winners) < 2:
        return default
    (b0, i0), (b1, i1) = winners[-2], winners[-1]
    k = (math.log(lrs[i1]) - math.log(lrs[i0])) / (math.log(b1) - math.log(b0))
    return min(max(k, TREND_RANGE[0]), TREND_RANGE[1])


def _neighbours(best: int, n: int, tried) -> list:
    return [j for j in (best - 1, best + 1) if 0 <= j < n and j not in tried]


def _edge(best: int, n: int) -> str:
    return AT_LOW if best == 0 else AT_HIGH if best == n - 1 else INTERIOR


def _replay(first: list, result: Callable, next_wave: Callable) -> Search:
    """Run the waves until one is unfinished or the search is done. ``result(index, race_cap)``
    is the finished Outcome of that cell, or None while it has not finished."""
    cells: dict = {i: None for i in first}
    wave, tried = list(first), {}
    while True:
        outcomes = {i: result(i, cells[i]) for i in wave}
        waiting = [i for i, o in outcomes.items() if o is None]
        if waiting:
            return Search(cells=cells, done=False, best=None, tried=tuple(sorted(tried)),
                          reason=f"waiting for {len(waiting)} run(s) of the wave {sorted(wave)}")
        tried.update(outcomes)
        wave, cap, best, why, steps = next_wave(tried)
        if not wave:
            return Search(cells=cells, done=True, best=best, reason=why, winner_steps=steps,
                          tried=tuple(sorted(tried)))
        cells.update({i: cap for i in wave})


def reference_search(n: int, start: int, result: Callable) -> Search:
    """The search at B_ref by final loss (Definition 1); ``result`` as in ``_replay``."""
    def next_wave(tried):
        finite = {i: o.loss for i, o in tried.items() if o.loss is not None and math.isfinite(o.loss)}
        if not finite:
            low = min(tried)
            if low == 0:
                return [], None, None, "every lr diverged, down to the low bound", None
            return [low - 1], None, None, "", None
        best = min(finite, key=lambda i: (finite[i], i))
        nxt = _neighbours(best, n, tried)
        return nxt, None, best, f"best final loss {_edge(best, n)}", None

    first = sorted({i for i in (start - 1, start, start + 1) if 0 <= i < n})
    return _replay(first, result, next_wave)


def chase_search(n: int, predicted: int, result: Callable) -> Search:
    """The search at a chase batch size by steps to L*, racing each wave against the best so far."""
    def next_wave(tried):
        reached = {i: o.steps for i, o in tried.items() if o.steps is not None}
        if reached:
            best = min(reached, key=lambda i: (reached[i], i))
            nxt = _neighbours(best, n, tried)
            return nxt, reached[best], best, f"fastest to the target {_edge(best, n)}", reached[best]
        finite = {i: o.loss for i, o in tried.items() if o.loss is not None and math.isfinite(o.loss)}
        if not finite:
            low = min(tried)
            if low == 0:
                return [], None, None, "no lr reached the target; every lr diverged", None
            return [low - 1], None, None, "", None
        best = min(finite, key=lambda i: (finite[i], i))
        nxt = _neighbours(best, n, tried)
        return nxt, None, best, f"no lr reached the target within the cap; best final loss {_edge(best, n)}", None

    return _replay([predicted], result, next_wave)


def flattened(batches: Sequence[float], steps: Sequence[float]) -> bool:
    """True when the last FLAT_DOUBLINGS steps between batch sizes each cut S(B) by less than
    1 - FLAT_RATIO per doubling (S(B) -> S_min, McCandlish et al. 2018: past the knee)."""
    if len(steps) < FLAT_DOUBLINGS + 1:
        return False
    for (b0, s0), (b1, s1) in zip(list(zip(batches, steps))[-FLAT_DOUBLINGS - 1:-1],
                                  list(zip(batches, steps))[-FLAT_DOUBLINGS:]):
        per_doubling = (s1 / s0) ** (1.0 / math.log2(b1 / b0))
        if per_doubling < FLAT_RATIO:
            return False
    return True
