"""Typed, frozen configuration from YAML/dicts, shared by every part of the package.

Configuration lives in frozen dataclasses (levanter's habit: typed fields, derived values as
properties). This module turns a nested dict (from YAML, JSON or ``--set key=value``) into
such a dataclass, rejecting unknown keys, wrong types and non-finite numbers with a
``ScalingError`` whose one line names the offending key. Range checks that depend on the
meaning of a field belong in each dataclass's ``__post_init__`` (raise ``ScalingError``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence, TypeVar, Union, get_args, get_origin

import yaml

from scaling.errors import ScalingError

T = TypeVar("T")


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with the same key twice (PyYAML keeps the last
    one silently, so a second ``lr:`` would overrule the first without a word)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: SafeLoader reports it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: str | os.PathLike) -> Any:
    """Parse a YAML (or JSON) file safely (no Python objects, no repeated keys); missing or
    malformed files raise ``ScalingError``."""
    path = Path(path)
    if not path.exists():
        raise ScalingError(f"{path}: no such file")
    if path.is_dir():
        raise ScalingError(f"{path}: is a directory, expected a YAML file")
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = yaml.load(f, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ScalingError(f"{path}: malformed YAML{where}: {problem}") from None
    except UnicodeDecodeError:
        raise ScalingError(f"{path}: not a text file") from None
    return {} if data is None else data


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"optim.lr=3e-3"`` -> (["optim", "lr"], 0.003). Values are parsed as YAML scalars."""
    if "=" not in item:
        raise ScalingError(f"--set {item!r}: expected key=value")
    key, _, raw = item.partition("=")
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ScalingError(f"--set {item!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):
        value = _maybe_number(value)
    return key.split("."), value


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict:
    """Return a copy of nested ``data`` with each ``key.sub=value`` override applied."""
    out = _deepcopy(dict(data))
    for item in overrides:
        keys, value = parse_override(item)
        set_dotted(out, ".".join(keys), value, where=f"--set {item!r}")
    return out


def set_dotted(d: dict, key: str, value: Any, where: str = "") -> None:
    """Set ``d["a"]["b"] = value`` for ``key = "a.b"``, creating sections as needed (in place)."""
    node = d
    parts = key.split(".")
    for p in parts[:-1]:
        child = node.get(p)
        if child is None:
            child = node[p] = {}
        elif not isinstance(child, dict):
            raise ScalingError(f"{where or f'cannot set {key!r}'}: {p!r} is not a section")
        node = child
    node[parts[-1]] = value


def _deepcopy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deepcopy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deepcopy(v) for v in d]
    return d


def _maybe_number(s: str) -> Any:
    """YAML 1.1 reads ``1e-3`` as a string; accept numeric strings as numbers."""
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ScalingError as e:
                errors.append(str(e))
        raise ScalingError(errors[0] if len(errors) == 1 else
                           f"{key}: {value!r} is not a {' or '.join(_type_name(a) for a in args)}")
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise ScalingError(f"{key}: {value!r} is not one of {', '.join(map(repr, get_args(tp)))}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ScalingError(f"{key}: expected a section (mapping), got {value!r}")
        return from_dict(tp, value, prefix=f"{key}.")
    if origin in (tuple, list, Sequence, typing.Sequence) or tp in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            value = [value]  # a scalar where a list is expected: a one-element list
        args = get_args(tp)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            item_tp = args[0]
        elif origin is tuple and args:
            if len(args) != len(value):
                raise ScalingError(f"{key}: expected {len(args)} values, got {len(value)}")
            return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        else:
            item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or tp is tuple else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ScalingError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ScalingError(f"{key}: {value!r} is not a boolean (true/false)")
    if tp is int:
        if isinstance(value, str):
            value = _maybe_number(value)
        if isinstance(value, bool):
            raise ScalingError(f"{key}: {value!r} is not an integer")
        if isinstance(value, float) and value.is_integer() and math.isfinite(value):
            return int(value)
        if isinstance(value, int):
            return value
        raise ScalingError(f"{key}: {value!r} is not an integer")
    if tp is float:
        if isinstance(value, str):
            value = _maybe_number(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ScalingError(f"{key}: {value!r} is not a number")
        value = float(value)
        if not math.isfinite(value):
            raise ScalingError(f"{key}: {value!r} is not a finite number")
        return value
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ScalingError(f"{key}: {value!r} is not a string")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ScalingError(f"{key}: {value!r} is not a {_type_name(tp)}")


def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from nested ``data``; unknown keys and bad types are errors."""
    if not isinstance(data, Mapping):
        raise ScalingError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ScalingError(f"unknown config key '{prefix}{unknown[0]}' "
                           f"(known: {', '.join(sorted(fields))})")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(value, hints[name], f"{prefix}{name}")
    missing = [n for n, f in fields.items() if n not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ScalingError(f"missing config key '{prefix}{missing[0]}'")
    try:
        return cls(**kwargs)
    except ScalingError:
        raise
    except (TypeError, ValueError) as e:
        raise ScalingError(f"{prefix.rstrip('.') or 'config'}: {e}") from None


def to_dict(obj: Any) -> Any:
    """Nested plain dict of a (frozen) dataclass; tuples become lists (JSON-friendly)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


# Field metadata of a setting that does not change what a run computes (where its metrics are
# reported): left out of the run id, so changing it keeps a recorded run's identity.
NOT_IDENTITY = types.MappingProxyType({"identity": False})


def identity_dict(obj: Any) -> Any:
    """The fields of a (frozen) dataclass that differ from their defaults, nested; for run ids.

    A run's identity must not change when a later version adds a field with a default (the
    default reproduces the old behaviour), so ids hash only what was set away from a default
    (the Marin executor hashes the explicit config for the same reason). Fields without a
    default are always kept; fields marked ``NOT_IDENTITY`` never.
    """
    if not (dataclasses.is_dataclass(obj) and not isinstance(obj, type)):
        return to_dict(obj)
    out = {}
    for f in dataclasses.fields(obj):
        if f.metadata.get("identity") is False:
            continue  # how a run is observed, not what it is (NOT_IDENTITY)
        value = getattr(obj, f.name)
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            out[f.name] = to_dict(value)
            continue
        if (dataclasses.is_dataclass(value) and dataclasses.is_dataclass(default)
                and type(value) is type(default)):
            nested = identity_dict(value)
            if nested != identity_dict(default):
                out[f.name] = nested
        elif to_dict(value) != to_dict(default):
            out[f.name] = to_dict(value)
    return out


def require(cond: bool, message: str) -> None:
    """Range check for ``__post_init__``: raise ``ScalingError(message)`` unless ``cond``."""
    if not cond:
        raise ScalingError(message)
