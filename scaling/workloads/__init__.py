"""Workload registry: grid files name a workload (``workload: lm``), loaded lazily by name.

A workload implements ``scaling.workloads.base.Workload``. Entries are ``"module:Class"`` so
that naming a workload imports nothing heavy until it is used (the LM trainer imports JAX).
"""

from __future__ import annotations

import importlib

from scaling.errors import ScalingError

WORKLOADS = {
    "lm": "scaling.workloads.lm:LMWorkload",
    "nqm": "scaling.workloads.nqm:NQMWorkload",
}


def get_workload(name: str):
    """A new instance of the workload registered as ``name``; ScalingError if unknown."""
    if name not in WORKLOADS:
        raise ScalingError(f"unknown workload {name!r} (known: {', '.join(sorted(WORKLOADS))})")
    module, _, cls = WORKLOADS[name].partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            raise ScalingError(f"workload {name!r} is not available ({module} is missing)") from None
        raise
    return getattr(mod, cls)()
