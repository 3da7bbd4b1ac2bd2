"""``scaling figs [NAME ...]``: regenerate the figures of paper_figs/ from runs/ and fits/.

Mirrors ``scaling.plots.registry``: every ``paper_figs/fig_*.py`` exposes
``make(runs_dir, fits_dir, out_dir, sweep=None)``; a figure whose data do not exist says so in
one line and is skipped.
"""

from __future__ import annotations

HELP = "regenerate the figures in paper_figs/ from runs/ and fits/ (or list them)"


def add_arguments(p) -> None:
    p.add_argument("names", nargs="*", metavar="NAME", help="figures to make (default: all); see --list")
    p.add_argument("--list", action="store_true", help="list the figures and exit")
    p.add_argument("--runs", default=None, help="runs directory (default: runs/ of the repository)")
    p.add_argument("--fits", default=None, help="fits directory (default: fits/ of the repository)")
    p.add_argument("--out", default=None, help="output directory (default: paper_figs/)")
    p.add_argument("--sweep", default=None, metavar="NAME",
                   help="sweep under runs/ to plot (default: for each figure, the first it can draw of the "
                        "shipped studies, the demo, the NQM demo)")


def run(args) -> int:
    from pathlib import Path

    from scaling.plots import registry

    root = registry.find_root()
    figs_dir = root / registry.FIGS_DIR
    chosen = registry.select(registry.scripts(figs_dir), args.names)
    if args.list:
        for s in chosen:
            print(f"{s.name:34s} {s.title}")
        return 0
    runs = Path(args.runs) if args.runs else root / "runs"
    fits = Path(args.fits) if args.fits else root / "fits"
    out = Path(args.out) if args.out else figs_dir
    if args.sweep is not None:
        _check_sweep(runs, args.sweep)
    wrote = skipped = 0
    for s in chosen:
        r = registry.run_script(s, runs, fits, out, args.sweep)
        if isinstance(r, registry.Skip):
            skipped += 1
        else:
            wrote += 1
        print(r.line(), flush=True)
    print(f"{wrote} figure(s) written to {out}, {skipped} skipped")
    return 0


def _check_sweep(runs, name: str) -> None:
    """``--sweep NAME`` must name a sweep under RUNS (``scaling.plots.sources.discover``)."""
    from scaling.errors import ScalingError
    from scaling.plots.sources import discover
    from scaling.sweep.records import is_sweep_dir

    if (runs / name).is_dir() and is_sweep_dir(runs / name):
        return
    found = [s.name for s in discover(runs)]
    if name not in found:
        raise ScalingError(f"--sweep {name}: no such sweep under {runs} "
                           f"({'found: ' + ', '.join(found) if found else 'it holds none'})")
