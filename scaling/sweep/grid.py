"""Grid files: the YAML description of a critical-batch-size study, parsed and validated.

A grid is model shapes x data sizes x batch sizes x learning rates x seeds, plus the rules
that make a batch-size sweep meaningful (Zhang et al. 2024, "How Does Critical Batch Size
Scale in Pre-training?", Sec. 2): the reference batch size B_ref, the target rule
(Definition 1: the best final EWA validation loss over the lr grid at B_ref after D tokens, or
an explicit loss), and a token cap for the runs that chase the target at other batch sizes.

Workload-specific content lives in ``base`` (merged into every run's config) and ``models``
(merged per model); every other key is the sweep's. Example (all keys)::

    name: demo                    # sweep directory runs/<name>/ (default: the file's stem)
    workload: lm                  # lm (default) or nqm
    base: {data: {tokenizer: bytes}, ewa: {half_lives_tokens: [8192]}}
    models:                       # dicts; for lm {d_model, n_layers} is short for {model: {...}}
      - {name: tiny, d_model: 32, n_layers: 2}
      - small                     # a named size (NAMED_SIZES)
      - {d_model: 64, n_layers: 2, tokens_per_param: [10, 20, 40, 80]}   # per-model data sizes
    model_grid: {d_model: [32, 64], n_layers: [2, 4]}   # widths x depths (appended to models)
    tokens: [1000000]             # data sizes D in tokens, and/or
    tokens_per_param: [20]        # D = 20 x N (N = the workload's params, non-embedding for lm)
    batch_sizes: [4, 8, 16, 32, 64]
    lrs: [0.001, 0.003, 0.01]
    seeds: [0]
    reference_batch: 8            # B_ref
    target: definition1           # or a loss, e.g. 3.42
    max_tokens_factor: 4          # runs chasing the target stop at 4 x D tokens (censored)
    warmup_fraction: 0.25         # warmup = 0.25 x D tokens (the paper's 25% of Chinchilla tokens)
    by_batch_size:                # step rules keyed by batch size: value of the largest key <= B
      optim.beta2: {1: 0.999, 256: 0.995, 512: 0.99, 2048: 0.95}
    together: auto                # runs that share shapes train as one program: true, false, or
                                  # auto (default: on an accelerator, not on a CPU backend)
    protocol: adaptive            # adaptive (default): search the lrs lattice per batch size and
                                  # race the runs (scaling.sweep.search); grid: train every cell
    lr_rule: 0.0                  # adaptive: predict lr ~ B^k from the neighbouring batch size's winner
    lr_start: 0.01                # adaptive: the first lr of the reference search (default: the
                                  # lattice point nearest its geometric middle)
    refine: 0                     # adaptive: batch sizes added at geometric midpoints around the CBS

Reserved keys in a model entry: ``name``, ``tokens``, ``tokens_per_param`` (override the data
sizes for that model), ``target`` (an explicit loss for that model's groups), ``lrs`` (that
model's learning-rate grid, e.g. widened where a winning lr sat at the edge of the global one),
``seeds`` (that model's seeds, e.g. replicates for the one family whose law should carry seed noise)
and ``by_batch_size`` (rules for that model's runs, over the grid's for the same key; e.g. a
schedule's budget per batch size).
Everything is validated before anything runs; a bad file raises ``ScalingError`` (exit 2).
"""

from __future__ import annotations

import itertools
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from scaling.config_io import load_yaml
from scaling.errors import ScalingError

DEFINITION1 = "definition1"  # Zhang et al. 2024, Definition 1
DEFAULT_MAX_TOKENS_FACTOR = 4.0  # token cap of target-chasing runs, as a multiple of D
DEFAULT_WORKLOAD = "lm"
AUTO = "auto"  # ``together: auto``: vmapped groups on an accelerator, one run at a time on a CPU
RESERVED_MODEL_KEYS = ("name", "tokens", "tokens_per_param", "target", "lrs", "seeds", "by_batch_size")
# the config section a model entry's bare keys go to ({d_model: 32} -> {model: {d_model: 32}})
MODEL_SECTION = {"lm": "model"}
# the config key warmup_fraction sets, per workload
WARMUP_KEY = {"lm": "optim.warmup_tokens"}

# Named model sizes for the LM workload. The OLMo shapes are the CBS paper's (Zhang et al.
# 2024, released configs: 85M ... 1.2B); the tiny ones fit this project's CPU budgets.
NAMED_SIZES = {
    "lm": {
        "micro": {"d_model": 32, "n_layers": 2, "n_heads": 2},
        "tiny": {"d_model": 48, "n_layers": 2, "n_heads": 4},
        "mini": {"d_model": 64, "n_layers": 2, "n_heads": 4},
        "small": {"d_model": 64, "n_layers": 4, "n_heads": 4},
        "medium": {"d_model": 96, "n_layers": 4, "n_heads": 4},
        "large": {"d_model": 128, "n_layers": 4, "n_heads": 4},
        "olmo-85m": {"d_model": 768, "n_layers": 12, "n_heads": 12},
        "olmo-151m": {"d_model": 1024, "n_layers": 12, "n_heads": 16},
        "olmo-302m": {"d_model": 1024, "n_layers": 24, "n_heads": 16},
        "olmo-604m": {"d_model": 2048, "n_layers": 12, "n_heads": 16},
        "olmo-1.2b": {"d_model": 2048, "n_layers": 24, "n_heads": 16},
    },
}

TOP_KEYS = ("name", "workload", "description", "base", "models", "model_grid", "tokens",
            "tokens_per_param", "batch_sizes", "lrs", "seeds", "reference_batch", "target",
            "max_tokens_factor", "warmup_fraction", "by_batch_size", "together", "protocol", "lr_rule",
            "lr_start", "refine")
GRID, ADAPTIVE = "grid", "adaptive"  # sweep protocols
PROTOCOLS = (GRID, ADAPTIVE)
DEFAULT_PROTOCOL = ADAPTIVE
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class ModelSpec:
    """One model shape: its name, config fragment, and its data sizes (absolute, per param)."""

    name: str
    fragment: dict
    tokens: tuple = ()
    tokens_per_param: tuple = ()
    target: Optional[float] = None
    lrs: tuple = ()  # this model's lr grid (widened where a winner sat at the edge); () = the grid's
    seeds: tuple = ()  # this model's seeds (replicates where seed noise is measured); () = the grid's
    by_batch_size: dict = field(default_factory=dict)  # this model's rules, over the grid's same keys


@dataclass(frozen=True)
class Grid:
    """A validated grid file (see the module docstring for the meaning of each field)."""

    name: str
    workload: str
    base: dict
    models: tuple  # of ModelSpec
    batch_sizes: tuple
    lrs: tuple
    seeds: tuple = (0,)
    reference_batch: Optional[int] = None
    target: Any = DEFINITION1  # DEFINITION1 or a float
    max_tokens_factor: float = DEFAULT_MAX_TOKENS_FACTOR
    warmup_fraction: Optional[float] = None
    by_batch_size: dict = field(default_factory=dict)
    together: Any = AUTO  # True/False/"auto": train runs that share shapes as one vmapped program
    protocol: str = DEFAULT_PROTOCOL  # GRID or ADAPTIVE
    lr_rule: float = 0.0  # adaptive: lr ~ B^lr_rule from one batch size's winner to the next
    lr_start: Optional[float] = None  # adaptive: first lr of the reference search (None: the middle)
    refine: int = 0  # adaptive: batch sizes added at geometric midpoints around the CBS estimate
    source: str = ""
    raw: dict = field(default_factory=dict)
    notes: tuple = ()  # what reading the file decided that the user should hear (one line each)

    @property
    def definition1(self) -> bool:
        return self.target == DEFINITION1

    def rule_values(self, batch_size: int, model_rules: Optional[Mapping] = None) -> dict:
        """Dotted key -> value of each ``by_batch_size`` rule at ``batch_size``; a model's own
        rules (``ModelSpec.by_batch_size``) replace the grid's for the same key."""
        out = {}
        for key, table in {**self.by_batch_size, **(model_rules or {})}.items():
            below = [b for b in table if b <= batch_size]
            out[key] = table[max(below)] if below else table[min(table)]
        return out


# --- small validators (each raises ScalingError naming the key) -----------------------------
def _bad(where: str, msg: str):
    raise ScalingError(f"{where}: {msg}")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number(v, key: str, where: str, *, integer=False, positive=True, minimum=None) -> float:
    if isinstance(v, str):
        try:
            v = float(v) if not integer else int(v)
        except ValueError:
            _bad(where, f"{key}: {v!r} is not a number")
    if not _is_number(v) or (isinstance(v, float) and not math.isfinite(v)):
        _bad(where, f"{key}: {v!r} is not a finite number")
    if integer:
        if isinstance(v, float) and not v.is_integer():
            _bad(where, f"{key}: {v!r} is not an integer")
        v = int(v)
    if positive and v <= 0:
        _bad(where, f"{key} must be positive, got {v!r}")
    if minimum is not None and v < minimum:
        _bad(where, f"{key} must be >= {minimum}, got {v!r}")
    return v


def _number_list(v, key: str, where: str, *, integer=False, positive=True) -> tuple:
    if _is_number(v) or isinstance(v, str):
        v = [v]
    if not isinstance(v, list):
        _bad(where, f"{key}: expected a list, got {v!r}")
    if not v:
        _bad(where, f"{key}: empty list")
    values = [_number(x, f"{key}[{i}]", where, integer=integer, positive=positive) for i, x in enumerate(v)]
    if len(set(values)) != len(values):
        _bad(where, f"{key}: repeated value in {values}")
    return tuple(values)


def _mapping(v, key: str, where: str) -> dict:
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        _bad(where, f"{key}: expected a mapping, got {v!r}")
    return dict(v)


def _leaf_name(fragment: Mapping, prefix="") -> list:
    parts = []
    for k, v in fragment.items():
        if isinstance(v, Mapping):
            parts += _leaf_name(v, "")
        else:
            parts.append(f"{k}{v}")
    return parts


def _model_name(fragment: Mapping, index: int) -> str:
    name = "-".join(_leaf_name(fragment))
    name = re.sub(r"[^A-Za-z0-9_.-]", "", name)
    return name or f"m{index}"


def _expand_shorthand(workload: str, entry: dict, top_keys: Optional[set]) -> dict:
    """For lm: keys that are not top-level config keys go to the ``model`` section."""
    section = MODEL_SECTION.get(workload)
    if section is None or top_keys is None:
        return entry
    nested = {k: v for k, v in entry.items() if k not in top_keys}
    out = {k: v for k, v in entry.items() if k in top_keys}
    if nested:
        merged = dict(out.get(section) or {})
        merged.update(nested)
        out[section] = merged
    return out


def _parse_rules(value, name: str, where: str) -> dict:
    """``by_batch_size``: dotted key -> {batch size: value}."""
    rules = {}
    for key, table in _mapping(value, name, where).items():
        table = _mapping(table, f"{name}.{key}", where)
        if not table:
            _bad(where, f"{name}.{key}: empty mapping")
        rules[str(key)] = {_number(b, f"{name}.{key} batch size {b!r}", where, integer=True): v
                           for b, v in table.items()}
    return rules


def _parse_models(data: dict, workload: str, where: str, top_keys: Optional[set]) -> tuple:
    entries = data.get("models", None)
    grid_entries = []
    if "model_grid" in data:
        mg = _mapping(data["model_grid"], "model_grid", where)
        if not mg:
            _bad(where, "model_grid: empty mapping")
        keys = list(mg)
        lists = []
        for k in keys:
            vals = mg[k] if isinstance(mg[k], list) else [mg[k]]
            if not vals:
                _bad(where, f"model_grid.{k}: empty list")
            lists.append(vals)
        grid_entries = [dict(zip(keys, combo)) for combo in itertools.product(*lists)]
    if entries is None:
        entries = [] if grid_entries else [{}]
    if not isinstance(entries, list):
        _bad(where, f"models: expected a list, got {entries!r}")
    if not entries and not grid_entries:
        _bad(where, "models: empty list")
    models = []
    for i, entry in enumerate(list(entries) + grid_entries):
        key = f"models[{i}]"
        if isinstance(entry, str):
            sizes = NAMED_SIZES.get(workload, {})
            if entry not in sizes:
                _bad(where, f"{key}: unknown named size {entry!r} for workload {workload!r}"
                     + (f" (known: {', '.join(sizes)})" if sizes else " (it has no named sizes)"))
            entry = {"name": entry, **sizes[entry]}
        if not isinstance(entry, Mapping):
            _bad(where, f"{key}: expected a mapping or a named size, got {entry!r}")
        entry = dict(entry)
        name = entry.pop("name", None)
        tokens = entry.pop("tokens", None)
        tpp = entry.pop("tokens_per_param", None)
        target = entry.pop("target", None)
        lrs = entry.pop("lrs", None)
        seeds = entry.pop("seeds", None)
        rules = _parse_rules(entry.pop("by_batch_size", None), f"{key}.by_batch_size", where)
        fragment = _expand_shorthand(workload, entry, top_keys)
        if name is None:
            name = _model_name(fragment, i)
        name = str(name)
        if not NAME_PATTERN.match(name):
            _bad(where, f"{key}.name {name!r}: use letters, digits, '_', '-' and '.'")
        models.append(ModelSpec(
            name=name, fragment=fragment,
            tokens=_number_list(tokens, f"{key}.tokens", where, integer=True) if tokens is not None else (),
            tokens_per_param=_number_list(tpp, f"{key}.tokens_per_param", where) if tpp is not None else (),
            target=_number(target, f"{key}.target", where) if target is not None else None,
            lrs=tuple(sorted(set(_number_list(lrs, f"{key}.lrs", where)))) if lrs is not None else (),
            seeds=tuple(dict.fromkeys(_number_list(seeds, f"{key}.seeds", where, integer=True, positive=False)))
            if seeds is not None else (),
            by_batch_size=rules))
    names = [m.name for m in models]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        _bad(where, f"models: two models are named {dup!r}; give them distinct names")
    return tuple(models)


def parse_grid(data: Any, source: str = "grid", top_keys: Optional[set] = None,
               default_name: str = "sweep") -> Grid:
    """Validate a grid dict (from YAML). ``top_keys``: the workload config's top-level keys
    (for the lm shorthand); the workload-specific checks happen when runs are expanded."""
    where = source
    if not isinstance(data, Mapping):
        _bad(where, f"expected a mapping at the top level, got {type(data).__name__}")
    data = dict(data)
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        _bad(where, f"unknown key {unknown[0]!r} (known: {', '.join(TOP_KEYS)})")
    name = str(data.get("name", default_name))
    if not NAME_PATTERN.match(name):
        _bad(where, f"name {name!r}: use letters, digits, '_', '-' and '.'")
    workload = str(data.get("workload", DEFAULT_WORKLOAD))
    base = _mapping(data.get("base"), "base", where)
    models = _parse_models(data, workload, where, top_keys)
    for key in ("batch_sizes", "lrs"):
        if key not in data:
            _bad(where, f"missing key {key!r}")
    batch_sizes = _number_list(data["batch_sizes"], "batch_sizes", where, integer=True)
    lrs = _number_list(data["lrs"], "lrs", where)
    seeds = _number_list(data.get("seeds", [0]), "seeds", where, integer=True, positive=False)
    tokens = _number_list(data["tokens"], "tokens", where, integer=True) if "tokens" in data else ()
    tpp = _number_list(data["tokens_per_param"], "tokens_per_param", where) if "tokens_per_param" in data else ()
    for i, m in enumerate(models):
        if not (m.tokens or m.tokens_per_param or tokens or tpp):
            _bad(where, f"model {m.name!r} has no data size: give 'tokens' and/or 'tokens_per_param'")
    models = tuple(m if (m.tokens or m.tokens_per_param) else
                   ModelSpec(m.name, m.fragment, tokens, tpp, m.target, m.lrs, m.seeds, m.by_batch_size)
                   for m in models)
    ref = data.get("reference_batch")
    ref = _number(ref, "reference_batch", where, integer=True) if ref is not None else None
    notes = ()
    if len(set(batch_sizes) | ({ref} if ref is not None else set())) < 2:
        _bad(where, f"batch_sizes: a critical batch size needs at least two batch sizes (B_ref and larger ones), "
                    f"got {list(batch_sizes)}")
    if ref is not None and ref not in batch_sizes:
        notes = (f"{where}: reference_batch {ref} is not in batch_sizes {list(batch_sizes)}; it is run too "
                 "(its runs set the target L*)",)
    target = data.get("target", DEFINITION1 if ref is not None else None)
    if isinstance(target, str) and target.strip().lower().replace(" ", "").replace("_", "") in (
            "definition1", "def1"):
        target = DEFINITION1
        if ref is None:
            _bad(where, "target: definition1 needs reference_batch (B_ref, the batch size whose "
                        "lr grid sets the target)")
    elif target is None:
        if any(m.target is None for m in models):
            _bad(where, "no target rule: give reference_batch (Definition 1) or target: <loss>")
        target = None
    else:
        target = _number(target, "target", where)
    if target == DEFINITION1 and any(m.target is not None for m in models):
        pass  # an explicit per-model target overrides Definition 1 for that model
    factor = _number(data.get("max_tokens_factor", DEFAULT_MAX_TOKENS_FACTOR), "max_tokens_factor",
                     where, minimum=1.0)
    together = data.get("together", AUTO)
    if not isinstance(together, bool) and together != AUTO:
        _bad(where, f"together must be true, false or auto, got {together!r}")
    warm = data.get("warmup_fraction")
    if warm is not None:
        warm = _number(warm, "warmup_fraction", where, positive=False)
        if not 0 <= warm < 1:
            _bad(where, f"warmup_fraction must be in [0, 1), got {warm}")
        if workload not in WARMUP_KEY:
            _bad(where, f"warmup_fraction: workload {workload!r} has no warmup")
    rules = _parse_rules(data.get("by_batch_size"), "by_batch_size", where)
    return Grid(name=name, workload=workload, base=base, models=models, batch_sizes=batch_sizes,
                lrs=lrs, seeds=seeds, reference_batch=ref, target=target, max_tokens_factor=factor,
                warmup_fraction=warm, by_batch_size=rules, together=together, source=source, raw=data, notes=notes,
                **_parse_protocol(data, where))


def _parse_protocol(data: Mapping, where: str) -> dict:
    """The sweep protocol and the adaptive search's keys (see the module docstring)."""
    protocol = data.get("protocol", DEFAULT_PROTOCOL)
    if protocol not in PROTOCOLS:
        _bad(where, f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    start = data.get("lr_start")
    refine = data.get("refine", 0)
    if not isinstance(refine, int) or isinstance(refine, bool) or refine < 0:
        _bad(where, f"refine must be a whole number >= 0, got {refine!r}")
    if protocol == GRID and any(k in data for k in ("lr_rule", "lr_start", "refine")):
        _bad(where, "lr_rule, lr_start and refine belong to protocol: adaptive")
    return {"protocol": protocol, "lr_rule": _number(data.get("lr_rule", 0.0), "lr_rule", where, positive=False),
            "lr_start": _number(start, "lr_start", where) if start is not None else None, "refine": refine}


def load_grid(path: "str | os.PathLike") -> Grid:
    """Read and validate a grid file (structure only; ``plan.expand`` checks every run)."""
    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, Mapping):
        raise ScalingError(f"{path}: expected a mapping at the top level")
    workload = str(data.get("workload", DEFAULT_WORKLOAD))
    return parse_grid(data, source=str(path), top_keys=workload_top_keys(workload),
                      default_name=path.stem)


def workload_top_keys(workload_name: str) -> Optional[set]:
    """Top-level keys of the workload's default config (None if it cannot be built)."""
    if workload_name not in MODEL_SECTION:
        return None
    from scaling.workloads import get_workload

    w = get_workload(workload_name)
    try:
        return set(w.config_dict(w.build_config({})))
    except ScalingError:
        return None
