"""Look of every figure: Okabe-Ito colours, fixed rcParams, log2 batch axes, number labels.

Okabe & Ito 2008 ("Color Universal Design"): eight colours distinguishable under the common
colour-vision deficiencies. Sequential data (many batch sizes) use viridis, which is too.
``pyplot()`` selects the non-interactive Agg backend and fixes every rcParam that could vary
between machines, so that a rerun writes the same bytes.
"""

from __future__ import annotations

import math

OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
SEQUENTIAL_CMAP = "viridis"
IDEAL_COLOR = "#555555"          # the ideal linear-scaling reference
FIGURE_WIDTH = 9.0               # inches, two panels side by side
PANEL_HEIGHT = 3.8
SINGLE_WIDTH = 5.2
DPI = 150
MAX_TICKS = 9                    # at most this many labelled powers of two on a batch axis
SI_PREFIXES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))

RC = {
    "font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9,
    "legend.fontsize": 7.5, "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.grid": True,
    "grid.alpha": 0.3, "grid.linewidth": 0.5, "lines.linewidth": 1.4, "lines.markersize": 4,
    "legend.frameon": False, "savefig.dpi": DPI, "figure.dpi": DPI, "svg.hashsalt": "scaling",
    "axes.spines.top": False, "axes.spines.right": False,
}


def pyplot():
    """matplotlib.pyplot on the Agg backend with the fixed style applied."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    matplotlib.rcdefaults()
    matplotlib.rcParams.update(RC)
    return plt


def color(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]


def human(x: float, digits: int = 2) -> str:
    """1234 -> '1.2k', 8.5e7 -> '85M', 12 -> '12' (B for 1e9, as model sizes are written)."""
    x = float(x)
    for scale, prefix in SI_PREFIXES:
        if abs(x) >= scale:
            return _plain(x / scale, digits) + prefix
    return _plain(x, digits + 1)


def _plain(v: float, digits: int) -> str:
    """v with ``digits`` significant digits, never in exponent notation (262.1 -> '262')."""
    s = f"{v:.{digits}g}"
    return f"{v:.0f}" if "e" in s else s


def power_of_two_label(x: float, _pos=None) -> str:
    """Tick label of a power of two: 1, 2, ..., 512, 1k, 2k, ... 1M."""
    if x <= 0:
        return ""
    if x >= 1024:
        k = round(math.log2(x))
        return f"{2 ** (k % 10)}{' kMGT'[k // 10]}".replace(" ", "")
    return f"{x:g}"


def log2_axis(ax, which: str = "x", lo: float = None, hi: float = None) -> None:
    """Log base-2 axis with labelled powers of two (every 2nd/3rd/... so at most MAX_TICKS)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log", base=2)
    if lo is None or hi is None:
        lo, hi = (ax.get_xlim() if which == "x" else ax.get_ylim())
    k_lo, k_hi = math.ceil(math.log2(lo) - 1e-9), math.floor(math.log2(hi) + 1e-9)
    stride = max(1, math.ceil((k_hi - k_lo + 1) / MAX_TICKS))
    ticks = [2.0 ** k for k in range(k_lo, k_hi + 1) if (k - k_lo) % stride == 0]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(power_of_two_label))
    axis.set_minor_locator(NullLocator())


def log10_axis(ax, which: str = "y") -> None:
    """Log base-10 axis with plain labels (1, 10, 100, 1k, ...)."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_locator(LogLocator(base=10, numticks=12))
    axis.set_major_formatter(FuncFormatter(lambda v, _p: human(v, 3) if v >= 1 else f"{v:g}"))


def padded_range(values, factor: float = 1.5) -> tuple:
    """(min / factor, max * factor) of positive values, for log axes."""
    v = [float(x) for x in values if x is not None and x > 0 and math.isfinite(x)]
    return (min(v) / factor, max(v) * factor)


LEGEND_ROW_HEIGHT = 0.19   # inches per legend row below the panels


TITLE_HEIGHT = 0.3         # inches kept free above the panels for the suptitle


def legend_below(fig, handles, labels, ncol: int = 3) -> None:
    """One legend centred below all panels; the panels shrink to make room (no overlap)."""
    rows = math.ceil(len(handles) / ncol)
    extra = rows * LEGEND_ROW_HEIGHT + 0.1
    fig.set_figheight(fig.get_figheight() + extra)
    frac = extra / fig.get_figheight()
    fig.legend(handles, labels, loc="lower center", ncol=ncol, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, frac, 1, 1 - TITLE_HEIGHT / fig.get_figheight()))
