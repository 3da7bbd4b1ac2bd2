"""Shared plotting for paper_figs/: style (Okabe-Ito, log2 batch axes), byte-stable PNG/PDF
output, the sweeps and fits the figures read, S(B) panels, and the figure registry that
``scaling figs`` runs. Importing this package does not import matplotlib."""

from scaling.plots.output import FigureResult, Skip, save_figure, write_caption

__all__ = ["FigureResult", "Skip", "save_figure", "write_caption"]
