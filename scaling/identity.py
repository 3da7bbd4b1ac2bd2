"""The one name of a run: ``run_id(workload, config)``, used by ``scaling train``, the sweep and
every workload, so that a run directory's name, its ``config.json`` ``run_id`` and its
``summary.json`` ``run_id`` agree (docs/design.md, "Run directory").

The id is the sha256 of the canonical JSON of the workload's name and the config's fields that
differ from their defaults (``scaling.config_io.identity_dict``): a later version that adds a
field with a default keeps every recorded run's id (the Marin executor hashes the explicit
config for the same reason).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Mapping

from scaling.config_io import identity_dict

ID_LENGTH = 12  # hex characters of the sha256 kept as a run id


def identity(config: Any) -> dict:
    """What defines a run: a dataclass config's non-default fields, or a mapping as given."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return identity_dict(config)
    if isinstance(config, Mapping):
        return dict(config)
    raise TypeError(f"a run config is a dataclass or a mapping, not {type(config).__name__}")


def run_id(workload: str, config: Any) -> str:
    """sha256 of the canonical JSON of ``{"workload": workload, "config": identity(config)}``."""
    blob = json.dumps({"workload": workload, "config": identity(config)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:ID_LENGTH]
