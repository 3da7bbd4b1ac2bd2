"""Engines: where a sweep's workers run (``scaling sweep GRID --engine local|ray|slurm``).

The sweep directory and its claims decide what runs (docs/design.md, "Sweep directory"); an
engine only places copies of the one worker loop (``scaling.sweep.runner.run_worker``) on the
machines a cluster gives it, so a copy that is started twice, killed, or retried after a node
loss never duplicates or corrupts a run. Nothing here imports Ray or submitit until a sweep is
started on them (both optional: ``pip install "scaling[ray]"`` / ``"scaling[slurm]"``).

Modules: ``call`` (a worker loop as a picklable call, for another process or machine),
``progress`` (the driver's report, read from the sweep's events), ``ray_engine`` (Ray tasks
with resource requests), ``slurm_engine`` (a SLURM array through submitit).
"""

ENGINES = ("local", "ray", "slurm")
