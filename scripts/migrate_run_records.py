"""Bring the run records of a sweep written before the one run identity and the typed summary
up to date, in place (the numbers do not change):

    python scripts/migrate_run_records.py runs/cpu_reference

- ``config.json`` and ``summary.json`` get ``run_id`` = the run directory's name (the sweep names
  a run directory with ``scaling.identity.run_id``; older trainers wrote another hash there);
- ``summary.json`` is rewritten as a ``scaling.summary.RunSummary`` (every field, in order, with
  the reason code ``censored_by`` of censored runs derived from the record's keys).

Each file is replaced atomically; a rerun changes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scaling import rundir
from scaling.errors import ScalingError
from scaling.store import atomic_write_json, read_json
from scaling.summary import RunSummary
from scaling.sweep.records import find_sweeps


def migrate_run(run_dir: Path) -> bool:
    """Rewrite one finished run directory; True when a file changed."""
    changed = False
    config = rundir.read_config(run_dir)
    if config is not None and config.get("run_id") != run_dir.name:
        atomic_write_json(run_dir / rundir.CONFIG, {**config, "run_id": run_dir.name})
        changed = True
    if rundir.read_status(run_dir) is not None:
        old = read_json(run_dir / rundir.SUMMARY)
        new = RunSummary.from_dict({**old, "run_id": run_dir.name}).to_dict()
        if new != old or list(new) != list(old):
            atomic_write_json(run_dir / rundir.SUMMARY, new)
            changed = True
    return changed


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep", help="a sweep directory (or a folder of sweeps)")
    a = p.parse_args(argv)
    try:
        roots = find_sweeps(a.sweep)
        if not roots:
            raise ScalingError(f"{a.sweep}: no sweep directory")
    except ScalingError as e:
        print(f"migrate_run_records: error: {e}", file=sys.stderr)
        return 2
    for root in roots:
        runs = [d for d in sorted(Path(root).iterdir()) if (d / rundir.CONFIG).is_file()]
        n = sum(migrate_run(d) for d in runs)
        print(f"{root}: {n} of {len(runs)} run directories rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
