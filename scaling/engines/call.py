"""One worker loop as a picklable call, for a Ray task or a SLURM array task.

``WorkerCall(...)(name)`` runs ``scaling.sweep.runner.run_worker`` on the sweep directory, which
must be on a filesystem every node shares (the claims and records live there). The grid's text
travels with the call, for nodes that cannot see the grid file; relative paths inside the grid
are read from the driver's working directory when the node has it. ``started`` is the driver's
start time, so every worker of one invocation, a retried one included, retries the failures of
earlier invocations only (``scaling.sweep.worker.needs_run``), as ``--workers K`` does.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from scaling.errors import ScalingError

# Environment a remote worker gets from the driver (Ray does not forward the driver's; SLURM does).
FORWARDED_ENV = ("JAX_PLATFORMS", "XLA_FLAGS")
FORWARDED_PREFIXES = ("SCALING_", "WANDB_")


def forwarded_env(environ=None) -> dict:
    """The driver's variables a worker needs to train the same way (backend, caches, trackers)."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if k in FORWARDED_ENV or k.startswith(FORWARDED_PREFIXES)}


@dataclass(frozen=True)
class WorkerCall:
    grid_path: str  # absolute, as the driver sees it
    grid_text: str
    out: str  # the sweep directory, absolute
    cwd: str  # the driver's working directory
    options: dict = field(default_factory=dict)  # WorkerOptions fields and compile_cache

    @classmethod
    def make(cls, grid_path, out, **options) -> "WorkerCall":
        grid_path = Path(grid_path).absolute()
        try:
            text = grid_path.read_text(encoding="utf-8")
        except OSError as e:
            raise ScalingError(f"{grid_path}: {e.strerror or e}") from None
        options.setdefault("started", time.time())
        return cls(str(grid_path), text, str(Path(out).absolute()), os.getcwd(), options)

    def grid_file(self) -> str:
        """The grid file on this node: the driver's, or a copy of its text."""
        if Path(self.grid_path).is_file():
            return self.grid_path
        copy = Path(tempfile.mkdtemp(prefix="scaling-grid-")) / Path(self.grid_path).name
        copy.write_text(self.grid_text, encoding="utf-8")
        return str(copy)

    def __call__(self, name: str) -> dict:
        from scaling.sweep.runner import run_worker

        if os.path.isdir(self.cwd):
            os.chdir(self.cwd)
        return run_worker(self.grid_file(), self.out, **{**self.options, "name": name})


def worker_name(engine: str, label: str) -> str:
    """A worker's name in locks and events: engine, its slot, host and pid."""
    return f"{engine}-{label}@{socket.gethostname()}:{os.getpid()}"
