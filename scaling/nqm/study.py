"""CBS against data size D on the NQM, for several spectra and optimizers (issue 10, item 3).

For each case (spectrum exponent p, optimizer) and each sample budget D, the exact sweep
(``scaling.nqm.sweep``) computes the Definition-1 target at B_ref (Zhang et al. 2024), S(B)
with a tuned lr (grid + zoom), and the CBS read directly off S(B). The S(B) tables are written
as ordinary steps tables (params = dim, tokens = D) and go through the analysis module --
``critical_batch_sizes`` (hyperbola fit, bootstrap intervals) and ``fit_law(..., "tokens")`` --
exactly as LM sweeps do; the direct CBS checks the fitted one. Zhang et al. 2024 report CBS
growing with D (about D^0.47 in their Chinchilla-style LM runs, Sec. 3, and growing with data
size in their linear-regression theory, Sec. 4); ``docs/nqm.md`` compares.

Output directory layout: ``<out>/<case>/steps.csv`` and ``fit.json`` per case, ``<out>/study.json``
(everything the write-up and the figure need), ``<out>/nqm_cbs_vs_data.png``.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from scaling.analysis.steps_table import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from scaling.nqm.problem import NQM, Optimizer
from scaling.nqm.sweep import ExactSweep, exact_sweep, lr_grid
from scaling.store import atomic_write_json, atomic_write_text

STEPS_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
DEFAULT_PS = (0.5, 1.0, 1.5, 2.0)
DEFAULT_OPTIMIZERS = (Optimizer(), Optimizer(momentum=0.9), Optimizer(q=0.5))
DEFAULT_BUDGETS = tuple(2**k for k in range(12, 23, 2))  # 4k ... 4M samples
DEFAULT_BATCHES = tuple(sorted({int(round(2 ** (k / 2))) for k in range(0, 35)}))  # 1 ... 2^17, half octaves
DEFAULT_REFERENCE_BATCH = 4
DEFAULT_DIM = 1000
STUDY_REFINE = 2  # lr zoom passes (a tuned lr per batch size)
STUDY_CAP_FACTOR = 2.0  # B S(B) above 1.2 D fails Definition 1 anyway; 2 D leaves room to interpolate
STUDY_LR_POINTS_PER_DECADE = 4
STUDY_LR_DECADES = 6.0
ZHANG_2024_D_EXPONENT = 0.47  # Zhang et al. 2024: CBS ~ D^0.47 (Chinchilla-style scaling)


@dataclass(frozen=True)
class Case:
    p: float
    optimizer: Optimizer

    @property
    def name(self) -> str:
        return f"p{self.p:g}_m{self.optimizer.momentum:g}_q{self.optimizer.q:g}"


def cbs_vs_data(problem: NQM, optimizer: Optimizer, budgets: Sequence[int], batch_sizes: Sequence[int],
                reference_batch: int, *, lrs: Optional[Sequence[float]] = None, refine: int = STUDY_REFINE,
                cap_factor: float = STUDY_CAP_FACTOR) -> list[ExactSweep]:
    """One exact sweep per budget D (Definition-1 target at each D)."""
    if lrs is None:
        lrs = lr_grid(problem, optimizer, STUDY_LR_POINTS_PER_DECADE, STUDY_LR_DECADES)
    return [exact_sweep(problem, optimizer, batch_sizes, lrs, int(d), reference_batch, refine=refine,
                        cap_factor=cap_factor) for d in budgets]


def steps_csv(results: Sequence[ExactSweep]) -> str:
    """A steps table (``scaling.analysis.steps_table`` columns) holding every finite S(B) of ``results``."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=STEPS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in results:
        for row in r.rows():
            writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def direct_exponent(budgets, cbs) -> float:
    """Least-squares slope of log CBS on log D (the check on the analysis module's law)."""
    return float(np.polyfit(np.log(budgets), np.log(cbs), 1)[0])


def analyse(steps_path: Path, reference_batch: int, fit_path: Optional[Path] = None) -> dict:
    """``scaling cbs`` + ``scaling fit --against tokens`` on one steps table."""
    from scaling.analysis import critical_batch_sizes, fit_law, load_steps

    result = critical_batch_sizes(load_steps(steps_path), reference_batch=reference_batch)
    law = fit_law(result, "tokens")
    if fit_path is not None:
        law.save(fit_path)
    cbs_law = law.laws["cbs"]
    return {"groups": [{"tokens": g.tokens, "cbs": g.cbs, "cbs_ci": list(g.cbs_ci), "b_noise": g.b_noise,
                        "s_min": g.s_min, "cbs_empirical": g.cbs_empirical, "rms_residual": g.rms_residual}
                       for g in result.groups],
            "exponent": cbs_law.exponents["tokens"], "exponent_ci": cbs_law.intervals()["a_tokens"],
            "prefactor_at_unit": cbs_law.prefactor_at_unit,
            "warnings": list(result.warnings) + list(law.meta.get("warnings", []))}


def run_study(out_dir: "str | Path", *, dim: int = DEFAULT_DIM, ps: Sequence[float] = DEFAULT_PS,
              optimizers: Sequence[Optimizer] = DEFAULT_OPTIMIZERS, budgets: Sequence[int] = DEFAULT_BUDGETS,
              batch_sizes: Sequence[int] = DEFAULT_BATCHES, reference_batch: int = DEFAULT_REFERENCE_BATCH,
              figure: "str | Path | None" = "default", progress: bool = False) -> dict:
    """The whole CBS-vs-D study; writes ``out_dir`` (see module docstring) and returns study.json's dict.

    ``figure``: where the PNG goes ("default": ``out_dir/nqm_cbs_vs_data.png``; None: no figure).
    """
    out_dir = Path(out_dir)
    cases = []
    t_start = time.perf_counter()
    for p in ps:
        problem = NQM(dim=dim, p=p)
        for opt in optimizers:
            case = Case(p, opt)
            t0 = time.perf_counter()
            results = cbs_vs_data(problem, opt, budgets, batch_sizes, reference_batch)
            case_dir = out_dir / case.name
            steps_path = case_dir / "steps.csv"
            atomic_write_text(steps_path, steps_csv(results))
            curve = [r.cbs() for r in results]
            bounded = [c.bounded for c in curve]
            cbs = [c.cbs for c in curve]
            used = [d for d, b in zip(budgets, bounded) if b]
            record = {
                "name": case.name, "p": p, "momentum": opt.momentum, "q": opt.q, "label": opt.label,
                "budgets": list(map(int, budgets)), "targets": [r.target for r in results],
                "cbs_direct": cbs, "cbs_direct_bounded": bounded,
                "exponent_direct": direct_exponent(used, [c for c, b in zip(cbs, bounded) if b])
                if len(used) >= 2 else None,
                "target_exponent": direct_exponent(budgets, [r.target for r in results]),
                "steps_csv": str(steps_path.relative_to(out_dir)),
                "seconds": time.perf_counter() - t0,
            }
            try:
                record["analysis"] = analyse(steps_path, reference_batch, case_dir / "fit.json")
            except Exception as e:  # the analysis refusing a case is a result, not a crash
                record["analysis"] = {"error": f"{type(e).__name__}: {e}"}
            cases.append(record)
            if progress:
                a = record["analysis"]
                print(f"{case.name:>16}: CBS {', '.join(f'{c:.4g}' for c in cbs)}; exponent direct "
                      f"{record['exponent_direct']}, fitted {a.get('exponent')} {a.get('exponent_ci')} "
                      f"{a.get('error', '')} ({record['seconds']:.1f} s)", flush=True)
    study = {"dim": dim, "reference_batch": reference_batch, "batch_sizes": list(map(int, batch_sizes)),
             "overhead": 0.2, "cases": cases, "zhang2024_d_exponent": ZHANG_2024_D_EXPONENT,
             "seconds": time.perf_counter() - t_start}
    atomic_write_json(out_dir / "study.json", study)
    if figure is not None:
        plot_study(study, out_dir / "nqm_cbs_vs_data.png" if figure == "default" else figure)
    return study


def plot_study(study: dict, path: "str | Path") -> None:
    """CBS vs D, one panel per optimizer, one line per spectrum exponent; law exponents in the legend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    labels = list(dict.fromkeys(c["label"] for c in study["cases"]))
    every = [v for c in study["cases"] for v in c["cbs_direct"] if v and math.isfinite(v)]
    lo_all, hi_all = min(every), max(every)
    fig, axes = plt.subplots(1, len(labels), figsize=(4.2 * len(labels), 3.6), sharey=True, squeeze=False)
    for ax, label in zip(axes[0], labels):
        for c in (c for c in study["cases"] if c["label"] == label):
            d = np.array(c["budgets"], float)
            cbs = np.array(c["cbs_direct"], float)
            ok = np.array(c["cbs_direct_bounded"])
            exp = c.get("analysis", {}).get("exponent")
            tag = f"p={c['p']:g}: " + (f"D^{exp:.2f}" if exp is not None else f"D^{c['exponent_direct'] or math.nan:.2f}")
            line, = ax.loglog(d[ok], cbs[ok], "o-", label=tag)
            if (~ok).any():
                ax.loglog(d[~ok], cbs[~ok], "^", color=line.get_color(), alpha=0.5)
            groups = c.get("analysis", {}).get("groups")
            if groups:  # the analysis module's CBS (hyperbola fit) with its bootstrap interval
                gd = np.array([g["tokens"] for g in groups])
                ax.loglog(gd, [g["cbs"] for g in groups], "--", color=line.get_color(), lw=1)
                lo = np.array([g["cbs_ci"][0] for g in groups])
                hi = np.array([g["cbs_ci"][1] for g in groups])
                ax.fill_between(gd, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
        d = np.array(study["cases"][0]["budgets"], float)
        ax.set_ylim(lo_all / 2, hi_all * 2)  # bootstrap bands of ill-conditioned fits may be huge
        ax.loglog(d, 30 * (d / d[0]) ** study["zhang2024_d_exponent"], "k:", lw=1, label="D^0.47 (Zhang 2024)")
        ax.set_title(f"NQM, {label}")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("data size D (samples)")
        ax.legend(fontsize=7)
        ax.grid(True, which="major", alpha=0.3)
    axes[0][0].set_ylabel(f"CBS (Def. 1, B_ref={study['reference_batch']})")
    fig.text(0.5, 0.005, "solid: read off exact S(B); dashed + band: hyperbola fit (scaling cbs), 95% CI; "
             "legend: fitted D exponent (scaling fit)", ha="center", fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    from scaling.store import atomic_write_bytes
    atomic_write_bytes(path, buf.getvalue())


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m scaling.nqm.study [OUT_DIR] [--figure PNG] [--quick]``: run the study, write results."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m scaling.nqm.study", description=main.__doc__)
    ap.add_argument("out_dir", nargs="?", default="runs/nqm_study")
    ap.add_argument("--figure", default="docs/nqm_cbs_vs_data.png")
    ap.add_argument("--quick", action="store_true", help="one spectrum, three budgets (seconds)")
    args = ap.parse_args(argv)
    kwargs = {"ps": (1.0,), "budgets": DEFAULT_BUDGETS[:3]} if args.quick else {}
    run_study(args.out_dir, figure=args.figure, progress=True, **kwargs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
