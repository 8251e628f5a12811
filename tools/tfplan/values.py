"""Terraform values on the wire (cty's msgpack encoding) and the walks over a schema block.

Why a module of its own: planning, applying and reading data sources all do the same thing —
walk an object along its schema and decide what an unset attribute becomes — and differ only
in that decision.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgpack


class Unknown:
    """A value known only after apply (cty's unknown; msgpack extension 0, or 12 with refinements)."""

    _instance: Unknown | None = None

    def __new__(cls) -> Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "(known after apply)"


UNKNOWN = Unknown()
_UNKNOWN_EXT = msgpack.ExtType(0, b"\x00")  # what cty writes for an unknown value


def _ext_hook(code: int, data: bytes) -> Any:
    if code in (0, 12):
        return UNKNOWN
    return msgpack.ExtType(code, data)


def _default(obj: Any) -> Any:
    if obj is UNKNOWN:
        return _UNKNOWN_EXT
    raise TypeError(f"cannot encode {type(obj).__name__}")


def decode(raw: bytes) -> Any:
    return msgpack.unpackb(raw, ext_hook=_ext_hook, raw=False, strict_map_key=False) if raw else None


def encode(value: Any) -> bytes:
    return bytes(msgpack.packb(value, default=_default, use_bin_type=True))


def placeholder(cty_type: Any, name: str) -> Any:
    """A known value of `cty_type` standing in for what only the cloud can tell (ids, emails, URIs)."""
    if cty_type == "string":
        return f"offline-{name}"
    if cty_type == "number":
        return 0
    if cty_type == "bool":
        return False
    if isinstance(cty_type, list):
        kind = cty_type[0]
        if kind in ("list", "set", "tuple"):
            return []
        if kind == "map":
            return {}
        if kind == "object":
            return {key: placeholder(sub, key) for key, sub in cty_type[1].items()}
    return None  # dynamic


def conform(block: dict[str, Any], value: Any) -> Any:
    """Fill what a JSON state left out so the object matches the schema (nulls, empty blocks)."""
    if value is None:
        return None
    out = dict(value)
    for name in block["attributes"]:
        out.setdefault(name, None)
    for name, nested in block["block_types"].items():
        mode = nested["nesting_mode"]
        current = out.get(name)
        if mode == "single":
            out[name] = conform(nested["block"], current)
        elif mode == "map":
            out[name] = {k: conform(nested["block"], v) for k, v in (current or {}).items()}
        else:
            out[name] = [conform(nested["block"], v) for v in (current or [])]
    return out


Fill = Callable[[str, dict[str, Any], Any], Any]


def fill_unset(block: dict[str, Any], value: Any, fill: Fill) -> Any:
    """The object with each attribute passed through `fill(name, attribute schema, value)`, blocks recursively."""
    if value is None or value is UNKNOWN:
        return value
    out = dict(value)
    for name, attr in block["attributes"].items():
        out[name] = fill(name, attr, out.get(name))
    for name, nested in block["block_types"].items():
        current = out.get(name)
        if current is None or current is UNKNOWN:
            continue
        if isinstance(current, dict) and nested["nesting_mode"] == "map":
            out[name] = {k: fill_unset(nested["block"], v, fill) for k, v in current.items()}
        elif isinstance(current, list):
            out[name] = [fill_unset(nested["block"], v, fill) for v in current]
        else:
            out[name] = fill_unset(nested["block"], current, fill)
    return out


def plan_fill(name: str, attr: dict[str, Any], value: Any) -> Any:
    """What a provider plans on create: an unset computed attribute is known only after apply;
    a write-only one is never kept."""
    if attr.get("write_only"):
        return None
    if value is None and attr.get("computed"):
        return UNKNOWN
    return value


def known_fill(name: str, attr: dict[str, Any], value: Any) -> Any:
    """What apply, a data source read or an ephemeral open returns: every unknown or unset
    computed attribute gets a known stand-in of its type."""
    if attr.get("write_only"):
        return None
    if value is UNKNOWN or (value is None and attr.get("computed")):
        return placeholder(attr["type"], name)
    return replace_nested_unknowns(value, attr["type"], name)


def replace_nested_unknowns(value: Any, cty_type: Any, name: str) -> Any:
    if value is UNKNOWN:
        return placeholder(cty_type, name)
    if isinstance(cty_type, list) and isinstance(value, list) and cty_type[0] in ("list", "set"):
        return [replace_nested_unknowns(v, cty_type[1], name) for v in value]
    if isinstance(cty_type, list) and isinstance(value, dict) and cty_type[0] == "map":
        return {k: replace_nested_unknowns(v, cty_type[1], k) for k, v in value.items()}
    if isinstance(cty_type, list) and isinstance(value, dict) and cty_type[0] == "object":
        return {k: replace_nested_unknowns(v, cty_type[1].get(k, "dynamic"), k) for k, v in value.items()}
    return value


def type_bytes(cty_type: Any) -> bytes:
    return json.dumps(cty_type, separators=(",", ":")).encode()
