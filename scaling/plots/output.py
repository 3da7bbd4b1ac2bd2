"""What a figure script returns, and how its files are written (byte-stable, atomic).

A script's ``make(runs_dir, fits_dir, out_dir)`` returns a ``FigureResult`` (the files it wrote
and the arrays it plotted, so tests can compare them with the analysis API) or a ``Skip`` (one
line saying which data are missing). PNG and PDF are written without timestamps
(``CreationDate: None``; Agg PNGs carry none), so rerunning on the same data gives the same bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from scaling.store import atomic_write_bytes, atomic_write_text

FORMATS = ("png", "pdf")
PDF_METADATA = {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": "scaling figs"}
PNG_METADATA = {"Software": None}


@dataclass(frozen=True)
class Skip:
    """A figure whose data do not exist (yet): one line saying what is missing."""

    name: str
    reason: str

    def line(self) -> str:
        return f"{self.name}: skipped: {self.reason}"


@dataclass(frozen=True)
class FigureResult:
    """The files one figure wrote and the data it plotted (``data``: plain arrays and numbers)."""

    name: str
    sweep: str
    files: tuple
    data: dict = field(repr=False, default_factory=dict)
    notes: tuple = ()

    def line(self) -> str:
        return f"{self.name}: wrote {', '.join(display_path(f) for f in self.files)} (sweep {self.sweep})"


def display_path(path) -> str:
    """``path`` relative to the current directory when inside it, else as given."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def save_figure(fig, out_dir, stem: str) -> list:
    """Write ``<out_dir>/<stem>.png`` and ``.pdf`` deterministically; close the figure."""
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    paths = []
    for fmt in FORMATS:
        buf = io.BytesIO()
        meta = PDF_METADATA if fmt == "pdf" else PNG_METADATA
        fig.savefig(buf, format=fmt, metadata=meta)
        path = out_dir / f"{stem}.{fmt}"
        atomic_write_bytes(path, buf.getvalue())
        paths.append(path)
    plt.close(fig)
    return paths


def write_caption(out_dir, stem: str, title: str, lines) -> Path:
    """``<out_dir>/<stem>.caption.md``: a title line and a short paragraph per item of ``lines``."""
    path = Path(out_dir) / f"{stem}.caption.md"
    text = f"**{title}**\n\n" + "\n\n".join(l.strip() for l in lines if l) + "\n"
    atomic_write_text(path, text)
    return path
