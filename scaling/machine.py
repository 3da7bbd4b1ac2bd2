"""What machine a measurement ran on, for benchmark result files.

Nothing here imports JAX: ``describe()`` also works where JAX itself is broken, which is
worth recording first on a machine one has for a few minutes (issue #19).
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Optional

COMMAND_TIMEOUT_S = 30
# nvidia-smi --query-gpu fields, in this order (``nvidia-smi --help-query-gpu`` names them)
GPU_FIELDS = ("name", "driver_version", "memory.total", "compute_cap", "clocks.max.sm")
# distributions every result file names (those installed), and name prefixes of the
# accelerator plugins and NVIDIA library wheels JAX runs on
PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy", "scipy", "ml-dtypes", "orbax-checkpoint", "tensorstore",
            "pyyaml", "tokenizers", "sentencepiece", "tqdm", "matplotlib")
ACCELERATOR_PREFIXES = ("jax-cuda", "jax_cuda", "jax-rocm", "nvidia-cudnn", "nvidia-cublas", "nvidia-cuda-runtime",
                        "nvidia-cuda-nvcc", "nvidia-nccl")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list:
    """1/5/15-minute load averages: other jobs on the machine make timings noisy."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def run_command(cmd: list) -> Optional[str]:
    """A command's stripped stdout, or None when it is missing, fails or hangs."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def gpus() -> list[dict]:
    """One dict of ``GPU_FIELDS`` per GPU that nvidia-smi lists; [] without nvidia-smi."""
    text = run_command(["nvidia-smi", f"--query-gpu={','.join(GPU_FIELDS)}", "--format=csv,noheader"])
    if not text:
        return []
    return [dict(zip(GPU_FIELDS, (v.strip() for v in line.split(",")))) for line in text.splitlines() if line.strip()]


def normalized(name: str) -> str:
    """A distribution name in PEP 503's normal form (``ml_dtypes`` and ``ML-Dtypes`` are ``ml-dtypes``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def package_versions(names=PACKAGES, prefixes=ACCELERATOR_PREFIXES) -> dict:
    """{distribution: version} of the installed ``names`` and of every distribution whose name
    starts with one of ``prefixes``."""
    from importlib import metadata
    wanted = {normalized(n) for n in names}
    out = {}
    for dist in metadata.distributions():
        name = normalized(dist.metadata["Name"] or "")
        if name in wanted or name.startswith(prefixes):
            out[name] = dist.version
    return dict(sorted(out.items()))


def git_state(repo: Path) -> dict:
    """The checkout's commit and whether tracked files differ from it (None outside git)."""
    commit = run_command(["git", "-C", str(repo), "rev-parse", "HEAD"])
    dirty = run_command(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"])
    return {"commit": commit, "dirty": bool(dirty) if commit else None}


def describe(repo: Optional[Path] = None) -> dict:
    """CPU, cores, OS, Python, packages, GPUs (nvidia-smi) and, given a checkout, its commit."""
    out = {"cpu": cpu_model(), "cores": os.cpu_count(), "os": platform.platform(),
           "python": platform.python_version(), "packages": package_versions(), "gpus": gpus(),
           "load_average": load_average()}
    if repo is not None:
        out["git"] = git_state(repo)
    return out
