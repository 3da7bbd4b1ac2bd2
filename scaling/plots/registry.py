"""The figure registry: the scripts in paper_figs/, found and run by ``scaling figs``.

Every ``paper_figs/fig_*.py`` exposes ``make(runs_dir, fits_dir, out_dir, sweep=None)``
returning a ``FigureResult`` or a ``Skip``; the module docstring's first line is its title.
Scripts are loaded from their files (paper_figs/ is not a package), in name order.
"""

from __future__ import annotations

import argparse
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from scaling.errors import ScalingError
from scaling.plots.output import FigureResult, Skip

FIGS_DIR = "paper_figs"
SCRIPT_GLOB = "fig_*.py"
SCRIPT_PREFIX = "fig_"


@dataclass(frozen=True)
class Script:
    name: str
    path: Path

    @property
    def title(self) -> str:
        text = self.path.read_text()
        import ast

        doc = ast.get_docstring(ast.parse(text)) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    def load(self):
        spec = importlib.util.spec_from_file_location(f"paper_figs_{self.name}", self.path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not callable(getattr(module, "make", None)):
            raise ScalingError(f"{self.path} has no make(runs_dir, fits_dir, out_dir) function")
        return module


def find_root(start: Optional[Path] = None) -> Path:
    """The repository root: the nearest directory at or above ``start`` (cwd) holding paper_figs/,
    else the directory above the installed package (an editable install of a clone)."""
    start = Path.cwd() if start is None else Path(start)
    for d in (start, *start.resolve().parents):
        if (d / FIGS_DIR).is_dir():
            return d
    import scaling

    pkg_root = Path(scaling.__file__).resolve().parent.parent
    if (pkg_root / FIGS_DIR).is_dir():
        return pkg_root
    raise ScalingError(f"cannot find {FIGS_DIR}/ at or above {start}; run from a clone of the repository")


def scripts(figs_dir: Path) -> list:
    return [Script(p.stem, p) for p in sorted(Path(figs_dir).glob(SCRIPT_GLOB))]


def select(all_scripts: list, names) -> list:
    """Scripts named in ``names`` (with or without the ``fig_`` prefix); all when empty."""
    if not names:
        return all_scripts
    by = {s.name: s for s in all_scripts}
    out = []
    for n in names:
        key = n if n in by else SCRIPT_PREFIX + n
        if key.endswith(".py"):
            key = Path(key).stem
        if key not in by:
            raise ScalingError(f"unknown figure {n!r}; figures: {', '.join(s.name for s in all_scripts)}")
        out.append(by[key])
    return out


def run_script(script: Script, runs_dir, fits_dir, out_dir, sweep: Optional[str] = None):
    """Run one script; a ScalingError from its data becomes a Skip naming the problem."""
    module = script.load()
    try:
        result = module.make(Path(runs_dir), Path(fits_dir), Path(out_dir), sweep=sweep)
    except ScalingError as e:
        return Skip(script.name, str(e))
    if not isinstance(result, (FigureResult, Skip)):
        raise TypeError(f"{script.path}: make() returned {type(result).__name__}")
    return result


def script_main(path: str, argv=None) -> int:
    """``python paper_figs/fig_X.py [--runs R] [--fits F] [--out O] [--sweep S]`` (standalone)."""
    import sys

    root = Path(path).resolve().parent.parent
    p = argparse.ArgumentParser(prog=Path(path).name)
    p.add_argument("--runs", default=str(root / "runs"))
    p.add_argument("--fits", default=str(root / "fits"))
    p.add_argument("--out", default=str(root / FIGS_DIR))
    p.add_argument("--sweep", default=None)
    a = p.parse_args(argv)
    try:
        r = run_script(Script(Path(path).stem, Path(path)), a.runs, a.fits, a.out, a.sweep)
    except ScalingError as e:
        print(f"{Path(path).name}: error: {e}", file=sys.stderr)
        return 2
    print(r.line())
    return 0
