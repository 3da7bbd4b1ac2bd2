"""Steps to target against batch size for one model size at several data sizes."""

from __future__ import annotations

from scaling.plots import sources
from scaling.plots.series import make_series

NAME = "fig_steps_vs_batch_data_sizes"


def make(runs_dir, fits_dir, out_dir, sweep=None):
    return make_series(NAME, "Steps to target vs batch size, several data sizes", runs_dir, fits_dir,
                       out_dir, sweep, sources.data_series, "tokens",
                       "one model size trained at two or more data sizes")


if __name__ == "__main__":
    from scaling.plots.registry import script_main
    raise SystemExit(script_main(__file__))
