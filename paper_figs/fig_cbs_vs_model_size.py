"""Critical batch size against model size: measured points, fitted law, forecast, leave-one-out."""

from __future__ import annotations

from scaling.plots import sources
from scaling.plots.lawfig import make_law_figure

NAME = "fig_cbs_vs_model_size"


def make(runs_dir, fits_dir, out_dir, sweep=None):
    return make_law_figure(NAME, runs_dir, fits_dir, out_dir, sweep, "params", sources.chinchilla_groups,
                           "three or more model sizes (each at its data size closest to 20 tokens per parameter)")


if __name__ == "__main__":
    from scaling.plots.registry import script_main
    raise SystemExit(script_main(__file__))
