"""Steps to target against batch size for several model sizes at one data size."""

from __future__ import annotations

from scaling.plots import sources
from scaling.plots.series import make_series

NAME = "fig_steps_vs_batch_model_sizes"


def make(runs_dir, fits_dir, out_dir, sweep=None):
    return make_series(NAME, "Steps to target vs batch size, several model sizes", runs_dir, fits_dir,
                       out_dir, sweep, sources.size_series, "params",
                       "two or more model sizes trained at one data size")


if __name__ == "__main__":
    from scaling.plots.registry import script_main
    raise SystemExit(script_main(__file__))
