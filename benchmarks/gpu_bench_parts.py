"""The bookkeeping of ``benchmarks/gpu_bench.sh`` (issue #19), one subcommand per job:

    python benchmarks/gpu_bench_parts.py missing [WHEELHOUSE]
        the distributions the project needs at run time that are absent here or older than
        pyproject.toml asks, and have a wheel in WHEELHOUSE (the ones to install), on stdout;
    python benchmarks/gpu_bench_parts.py versions OUT.json [--installed NAMES]
        the machine without importing JAX (scaling.machine.describe: packages, nvidia-smi, git)
        plus what is still missing after the install;
    python benchmarks/gpu_bench_parts.py part SUMMARY.json NAME RC SECONDS GUARD FILE...
        records one finished part: ok (exit 0), timeout (124/137: the part's time guard fired)
        or failed, with the result files it left that are non-empty;
    python benchmarks/gpu_bench_parts.py sweep-state SUMMARY.json STATUS.json
        adds ``scaling status --json`` of the sweep to the summary.

Nothing here imports JAX: it must work on a machine where JAX is broken, to say so.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scaling.machine import describe  # noqa: E402
from scaling.store import atomic_write_json  # noqa: E402

# what the project imports at run time, beyond what the GPU image provides for JAX itself
# (jax, jaxlib, flax, optax, numpy): import name -> distribution (pyproject.toml's dependencies)
RUNTIME_IMPORTS = {"yaml": "pyyaml", "orbax.checkpoint": "orbax-checkpoint", "tokenizers": "tokenizers",
                   "sentencepiece": "sentencepiece", "tqdm": "tqdm", "scipy": "scipy", "matplotlib": "matplotlib"}
TIMEOUT_CODES = (124, 137)  # timeout(1): the guard fired (SIGTERM), or the kill after it


def _minimum_versions() -> dict:
    """{distribution: specifier} from pyproject.toml's dependencies (empty where unreadable)."""
    try:
        import tomllib
        from packaging.requirements import Requirement
    except ImportError:  # Python 3.10 or no packaging: presence only
        return {}
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {Requirement(d).name.lower(): Requirement(d).specifier for d in deps}


def missing() -> list[str]:
    """Runtime distributions that are absent or older than pyproject.toml's minimum."""
    import importlib.util
    from importlib import metadata
    minimum = _minimum_versions()
    out = []
    for module, dist in RUNTIME_IMPORTS.items():
        try:  # found without importing it (SciPy and Matplotlib take seconds to import)
            found = importlib.util.find_spec(module) is not None
            version = metadata.version(dist)
        except (ImportError, ValueError):  # a parent package or the distribution is missing
            found = False
        if not found:
            out.append(dist)
            continue
        spec = minimum.get(dist)
        if spec is not None and not spec.contains(version, prereleases=True):
            out.append(dist)
    return out


def wheel_name(dist: str) -> str:
    """A distribution's name as wheel files spell it (PEP 427: runs of -_. become _)."""
    return re.sub(r"[-_.]+", "_", dist).lower()


def installable(names: list[str], wheelhouse: Path) -> list[str]:
    have = {p.name.split("-")[0].lower() for p in wheelhouse.glob("*.whl")} if wheelhouse.is_dir() else set()
    return [n for n in names if wheel_name(n) in have]


def record_part(summary_path: Path, name: str, rc: int, seconds: float, guard: float, files: list[str]) -> dict:
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {"parts": {}}
    status = "ok" if rc == 0 else "timeout" if rc in TIMEOUT_CODES else "failed"
    out_dir = summary_path.parent
    written = [f for f in files if (out_dir / f).is_file() and (out_dir / f).stat().st_size > 0]
    summary.setdefault("parts", {})[name] = {"status": status, "rc": rc, "seconds": round(seconds, 1),
                                             "guard_s": guard, "files": written}
    summary["finished"] = [k for k, v in summary["parts"].items() if v["status"] == "ok"]
    summary["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    atomic_write_json(summary_path, summary)
    return summary


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[0], argv[1:]
    if cmd == "missing":
        wheelhouse = Path(args[0]) if args else REPO / "wheelhouse"
        print(" ".join(installable(missing(), wheelhouse)))
        return 0
    if cmd == "versions":
        installed = args[args.index("--installed") + 1].split() if "--installed" in args else []
        atomic_write_json(args[0], {"machine": describe(REPO), "python_executable": sys.executable,
                                    "installed_from_wheelhouse": installed, "missing_after_install": missing()})
        return 0
    if cmd == "part":
        name, rc, seconds, guard, *files = args[1:]
        record_part(Path(args[0]), name, int(rc), float(seconds), float(guard), files)
        return 0
    if cmd == "sweep-state":
        summary_path, status_path = Path(args[0]), Path(args[1])
        summary = json.loads(summary_path.read_text())
        try:
            summary["sweep_status"] = json.loads(status_path.read_text())
        except (OSError, ValueError) as e:
            summary["sweep_status"] = {"unavailable": f"{type(e).__name__}: {e}"}
        atomic_write_json(summary_path, summary)
        return 0
    print(f"error: unknown subcommand {cmd!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
