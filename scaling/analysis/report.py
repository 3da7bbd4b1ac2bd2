"""Human-readable tables for ``scaling cbs``, ``fit`` and ``predict`` (stdout), warnings to stderr."""

from __future__ import annotations

import sys


def fmt(x, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(fmt(v, digits) for v in x) + "]"
    return f"{x:.{digits}g}"


def table(headers, rows) -> str:
    cells = [list(map(str, headers))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_warnings(command: str, warnings) -> None:
    for w in warnings:
        print(f"scaling {command}: warning: {w}", file=sys.stderr)
