"""JAX's persistent compilation cache: the one place it is configured.

Programs compiled once on a machine are reused by every later process (sweep workers, tests,
the demo), so a run whose shapes were seen before starts without compiling. The directory is
the one given, else ``$JAX_COMPILATION_CACHE_DIR`` when the user set it, else
``$SCALING_CACHE/jax`` (default ``~/.cache/scaling/jax``). Safe before or after JAX is imported:
it sets the environment for a JAX imported later and updates a JAX already imported; importing
this module does not import JAX.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

CACHE_SUBDIR = "jax"
MIN_COMPILE_SECS_TO_CACHE = 0  # cache every program: the small steps of tiny models compile in < 1 s
ENV_DIR = "JAX_COMPILATION_CACHE_DIR"


def default_dir() -> Path:
    from scaling.data.dataset import cache_root

    return cache_root() / CACHE_SUBDIR


def enable(path: "str | os.PathLike | None" = None) -> Optional[Path]:
    """Turn the cache on at ``path`` (see the module docstring); returns the directory used, or
    None when it cannot be created (the cache is an optimisation, never an error)."""
    chosen = Path(path).expanduser() if path else Path(os.environ.get(ENV_DIR) or default_dir())
    try:
        chosen.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    os.environ.setdefault(ENV_DIR, str(chosen))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", str(MIN_COMPILE_SECS_TO_CACHE))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    if "jax" in sys.modules:
        import jax

        if not jax.config.jax_compilation_cache_dir:
            jax.config.update("jax_compilation_cache_dir", os.environ[ENV_DIR])
            jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECS_TO_CACHE)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return Path(os.environ[ENV_DIR])
