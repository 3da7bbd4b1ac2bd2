"""The sweep layer: grid files -> two-phase runs (Definition 1 of Zhang et al. 2024) -> records.

Python API (mirrors the CLI):

- ``run_sweep(grid_path, workers=1, dry_run=False, out=None, devices=None, ...)``  ``scaling sweep``
- ``status(runs="runs")``                                   ``scaling status``
- ``steps_rows(runs_dir)``, ``write_steps_csv(rows, path)``  ``scaling steps``

Modules: ``grid`` (YAML grid files), ``plan`` (expansion, run ids), ``protocol`` (targets,
manifest), ``locks`` (claims with heartbeats), ``worker`` (the run loop, failure isolation),
``runner`` (one command, K workers), ``records``/``status``/``export`` (reading sweeps back).
The demo (sweep + analysis + figures) sits above this layer, in ``scaling.demo``.
Nothing here imports JAX; the LM workload does, when a run starts.
"""

from scaling.sweep.grid import Grid, load_grid, parse_grid
from scaling.sweep.plan import Plan, expand, token_cost
from scaling.sweep.runner import SweepOutcome, open_sweep, run_sweep, run_worker
from scaling.sweep.status import render as render_status
from scaling.sweep.status import status
from scaling.sweep.export import steps_csv, steps_rows, write_steps_csv

__all__ = ["Grid", "load_grid", "parse_grid", "Plan", "expand", "token_cost", "SweepOutcome",
           "open_sweep", "run_sweep", "run_worker", "status", "render_status", "steps_rows", "steps_csv",
           "write_steps_csv"]
