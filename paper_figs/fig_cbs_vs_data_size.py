"""Critical batch size against data size: measured points, fitted law, forecast, leave-one-out."""

from __future__ import annotations

from scaling.plots import sources
from scaling.plots.lawfig import make_law_figure

NAME = "fig_cbs_vs_data_size"


def make(runs_dir, fits_dir, out_dir, sweep=None):
    return make_law_figure(NAME, runs_dir, fits_dir, out_dir, sweep, "tokens", sources.data_series,
                           "one model size at three or more data sizes")


if __name__ == "__main__":
    from scaling.plots.registry import script_main
    raise SystemExit(script_main(__file__))
