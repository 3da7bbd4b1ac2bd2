"""``scaling demo``: the whole pipeline on this machine, in minutes (the top layer: it uses the
sweep, the analysis, the fit command's table and the figures).

Runs the demo grid (``runs/grids/demo.yaml``: one tiny byte-level model on the embedded
default corpus at four data sizes, Definition-1 target at B_ref, an lr search per batch size; or
``nqm_demo.yaml``) into ``runs/demo``, writes ``steps.csv`` there, prints S(B) -- steps to the
target falling with batch size, linearly at first, then more slowly -- the critical batch size
(Zhang et al. 2024, Definition 1) with its bootstrap interval and McCandlish's B_noise beside it,
fits CBS against D when there are enough data sizes, and draws the figures. Rerunning resumes;
a finished demo only re-prints.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Callable, Optional

from scaling.errors import ScalingError
from scaling.sweep.export import steps_rows, write_steps_csv
from scaling.sweep.records import STEPS_FILE
from scaling.sweep.runner import run_sweep

DEMO_GRID = Path(__file__).resolve().parents[1] / "runs" / "grids" / "demo.yaml"
DEFAULT_OUT = Path("runs") / "demo"
FIT_FILE = "fit_tokens.json"
MIN_GROUPS_FOR_LAW = 3  # a power law through fewer data sizes has no residual to judge it by
DEMO_FIGURES = ("fig_steps_vs_batch_data_sizes", "fig_cbs_vs_data_size", "fig_loss_vs_tokens")
WORKLOAD_GRIDS = {"lm": DEMO_GRID, "nqm": DEMO_GRID.parent / "nqm_demo.yaml"}
MAX_DEMO_WORKERS = 2  # the adaptive search's waves rarely hold more runs than this at once


def default_workers(workload: str) -> int:
    """Worker processes for the demo: one per core (at most MAX_DEMO_WORKERS) for the LM; the NQM
    demo takes seconds, less than starting another process costs."""
    if workload != "lm":
        return 1
    return max(1, min(MAX_DEMO_WORKERS, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else (os.cpu_count() or 1)))


def best_per_batch(rows: list) -> list:
    """(params, tokens, batch, S(B), best lr, target) per group and batch: S(B) = min over lrs."""
    best: dict = {}
    for r in rows:
        key = (r["params"], r["tokens"], r["batch_size"])
        if r["status"] == "done" and r["steps"] is not None:
            if best.get(key) is None or r["steps"] < best[key]["steps"]:
                best[key] = r
        else:
            best.setdefault(key, None)
    out = []
    for key in sorted(best, key=lambda k: (float(k[0]), float(k[1]), float(k[2]))):
        r = best[key]
        out.append({"params": key[0], "tokens": key[1], "batch_size": key[2],
                    "steps": r["steps"] if r else None, "lr": r["lr"] if r else None,
                    "lr_edge": r["lr_edge"] if r else "", "target_loss": r["target_loss"] if r else None})
    return out


def _lr(t: dict) -> str:
    return f"{t['lr']:g}" if t["lr"] else "-"


def render_steps(table: list, reference_batch: Optional[int]) -> str:
    lines = ["steps to target S(B) (minimum over the lr grid; ideal = linear scaling from B_ref):",
             f"{'params':>8} {'tokens':>9} {'batch':>6} {'S(B)':>9} {'ideal':>9} {'best lr':>8}  note"]
    ref = {}
    for t in table:
        if t["batch_size"] == reference_batch and t["steps"]:
            ref[(t["params"], t["tokens"])] = t["steps"]
    for t in table:
        s_ref = ref.get((t["params"], t["tokens"]))
        ideal = s_ref * reference_batch / t["batch_size"] if s_ref and reference_batch else None
        steps = f"{t['steps']:.1f}" if t["steps"] else "censored"
        note = "B_ref" if t["batch_size"] == reference_batch else ""
        if t["lr_edge"]:
            note += (", " if note else "") + f"best lr at the {t['lr_edge']} edge of the grid"
        lines.append(f"{t['params']:>8} {t['tokens']:>9} {t['batch_size']:>6} {steps:>9} "
                     f"{(f'{ideal:.1f}' if ideal else '-'):>9} {_lr(t):>8}  {note}")
    return "\n".join(lines)


def analyse(steps_path: Path, reference_batch: Optional[int]):
    """CBS per group (Zhang et al. 2024 Def. 1) from the demo's steps table."""
    from scaling.analysis import critical_batch_sizes, load_steps

    return critical_batch_sizes(load_steps(steps_path), reference_batch=reference_batch)


def render_cbs(result) -> str:
    lines = []
    for g in result.groups:
        lo, hi = g.cbs_ci
        tok = f" = {g.cbs_tokens:,.0f} tokens" if g.cbs_tokens else ""
        lines.append(f"D = {g.tokens:,.0f} tokens: critical batch size (Zhang et al. 2024 Def. 1, "
                     f"{100 * g.overhead:g}% overhead over linear scaling from B_ref={g.reference_batch:g}): "
                     f"{g.cbs:.1f} sequences{tok}, {100 * result.confidence:g}% interval [{lo:.1f}, {hi:.1f}]")
        lines.append(f"  step model S(B) = S_min (1 + B_noise / B): S_min = {g.s_min:.1f}, B_noise = "
                     f"{g.b_noise:.1f} (McCandlish's B_crit, a different quantity)")
    return "\n".join(lines)


def fit_demo_law(result, out: Path, print_fn: Callable):
    """Fit CBS against data size when the demo has enough groups; save it beside the runs."""
    from scaling.analysis import fit_law
    from scaling.commands.fit import render

    groups = [g for g in result.groups if g.cbs is not None and math.isfinite(g.cbs)]
    if len({g.tokens for g in groups}) < MIN_GROUPS_FOR_LAW:
        print_fn(f"no law: fewer than {MIN_GROUPS_FOR_LAW} data sizes with a CBS")
        return None
    fit = fit_law(result, "tokens")
    fit.save(out / FIT_FILE)
    print_fn("")
    print_fn(render(fit))
    print_fn(f"law saved: {out / FIT_FILE} (scaling predict {out / FIT_FILE} --params N --tokens D)")
    return fit


def write_figures(out: Path, print_fn: Callable) -> list:
    """Draw the demo's figures (paper_figs scripts on this sweep) into ``out/figures``."""
    from scaling.plots.output import FigureResult
    from scaling.plots.registry import find_root, run_script, scripts, select

    root = find_root()
    chosen = select(scripts(root / "paper_figs"), DEMO_FIGURES)
    written = []
    for script in chosen:
        r = run_script(script, out.parent, out / "fits", out / "figures", sweep=out.name)
        print_fn(r.line())
        if isinstance(r, FigureResult):
            written.append(r)
    return written


def demo(out=DEFAULT_OUT, grid=None, workers: int = 1, print_fn: Callable = print,
         figures: bool = True, **sweep_kw) -> dict:
    """Run the demo sweep into ``out``; print and return its steps table (and CBS text)."""
    grid = Path(grid) if grid is not None else DEMO_GRID
    if not grid.exists():
        raise ScalingError(f"demo grid {grid} not found (pass --grid GRID)")
    t0 = time.time()
    result = run_sweep(grid, workers=workers, out=out, print_fn=print_fn, **sweep_kw)
    out = result.root
    rows = steps_rows(out)
    steps_path = out / STEPS_FILE
    write_steps_csv(rows, steps_path)
    ref = result.plan.grid.reference_batch
    table = best_per_batch(rows)
    text = render_steps(table, ref)
    print_fn("")
    print_fn(text)
    print_fn(f"steps table: {steps_path} ({len(rows)} runs)")
    cbs = fit = None
    try:
        result = analyse(steps_path, ref)
    except ScalingError as e:
        result = None
        print_fn(f"no CBS: {e}")
    if result is not None:
        cbs = render_cbs(result)
        print_fn(cbs)
        try:
            fit = fit_demo_law(result, out, print_fn)
        except ScalingError as e:
            print_fn(f"no law: {e}")
        if figures:
            print_fn("")
            write_figures(out, print_fn)
    print_fn(f"demo took {time.time() - t0:.0f} s")
    return {"root": out, "rows": rows, "table": table, "cbs": cbs, "fit": fit, "seconds": time.time() - t0}
