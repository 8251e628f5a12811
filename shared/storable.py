"""What Postgres can hold: the edge's promise that an accepted envelope can be written.

`text` and `jsonb` refuse the NUL character and lone UTF-16 surrogates (and UTF-8 cannot
even encode the latter, so neither can Pub/Sub); JSON's NaN/Infinity are not JSON to
Postgres; Python refuses to print integers past its int-to-str limit; very deep nesting
exhausts recursion in serialisers. The edge parses bodies with `loads` (markers for what
cannot be represented, then one walk that normalises strings and names the first field at
fault), and the envelope checks its payload with `check`, so nothing unstorable is ever
published, whatever an adapter builds.

Strings are normalised, not refused: a NUL or a lone surrogate becomes U+FFFD, so a lead
whose platform sent one odd character is still recorded (and the mark shows where).
Numbers and depth are refused: there is no faithful smaller version of them.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 32  # JSON containers inside one another; real webhooks use under 10
MAX_INT_DIGITS = 40  # far beyond any platform id (int64 is 19 digits), far below Python's 4300
REPLACEMENT = "\ufffd"
_INT_LIMIT = 10**MAX_INT_DIGITS
_UNSTORABLE_CHAR = re.compile("[\x00\ud800-\udfff]")
# In JSON text a NUL or a surrogate can only come as an escape (raw, one is invalid JSON or UTF-8).
_ODD_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89abAB]|[dD][c-fC-F])")


class Unstorable(ValueError):
    """A value Postgres (or Python's own printing) cannot hold; `field` is its dotted path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class _Refused:
    """What `loads` puts where a number cannot be represented; the walk names its field."""

    def __init__(self, message: str) -> None:
        self.message = message


def _parse_int(text: str) -> int | _Refused:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        return _Refused(f"integer with more than {MAX_INT_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float | _Refused:
    value = float(text)
    return value if math.isfinite(value) else _Refused(f"number {text[:20]} is out of range")


def _parse_constant(text: str) -> _Refused:
    return _Refused(f"{text} is not a JSON number")


def clean_text(text: str) -> str:
    """`text` with each NUL and lone surrogate replaced by U+FFFD (unchanged when it has none)."""
    return _UNSTORABLE_CHAR.sub(REPLACEMENT, text) if _UNSTORABLE_CHAR.search(text) else text


def loads(raw: bytes | str) -> Any:
    """JSON text to storable values: strings normalised, bad numbers and depth refused (Unstorable).

    Raises ValueError (json.JSONDecodeError, UnicodeDecodeError) for text that is not JSON
    and RecursionError for nesting too deep even to parse.
    """
    refused: list[_Refused] = []

    def noted(value: Any) -> Any:
        if isinstance(value, _Refused):
            refused.append(value)
        return value

    parsed = json.loads(raw, parse_int=lambda t: noted(_parse_int(t)), parse_float=lambda t: noted(_parse_float(t)),
                        parse_constant=lambda t: noted(_parse_constant(t)))
    if isinstance(raw, bytes) and not refused and json.detect_encoding(raw) == "utf-8" \
            and not _ODD_ESCAPE.search(raw) and raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return parsed  # the usual body: nothing to clean, nothing refused, not deep enough to check
    return _walk(parsed, (), normalise=True, limit=MAX_DEPTH)


def normalise(value: Any) -> Any:
    """`value` (already parsed JSON) as `loads` would have made it: strings cleaned; Unstorable otherwise."""
    return _walk(value, (), normalise=True, limit=MAX_DEPTH)


def check(value: Any, field: str = "", max_depth: int = MAX_DEPTH) -> None:
    """Raise Unstorable for the first part of `value` Postgres could not hold (nothing is changed).

    `max_depth` counts containers below `value` itself. Every envelope is checked whole, so the
    usual answer (all fine) comes from `_fits`, which builds no paths; only a value it doubts is
    walked again to name the part at fault.
    """
    if not _fits(value, max_depth):
        _walk(value, (field,) if field else (), normalise=False, limit=max_depth)


def _fits(value: Any, limit: int) -> bool:
    """True when `_walk` would find nothing to refuse in `value` (False: let `_walk` say what)."""
    kind = type(value)
    if kind is str:
        return _UNSTORABLE_CHAR.search(value) is None
    if kind is bool or value is None or (kind is float and math.isfinite(value)):
        return True
    if kind is int:
        return bool(abs(value) < _INT_LIMIT)
    if kind is dict:
        return limit > 0 and all(
            (not isinstance(key, str) or _UNSTORABLE_CHAR.search(key) is None) and _fits(item, limit - 1)
            for key, item in value.items())
    if kind is list or kind is tuple:
        return limit > 0 and all(_fits(item, limit - 1) for item in value)
    return not isinstance(value, (str, int, float, dict, list, tuple, _Refused))  # typed values; subclasses: walk


def _path(path: tuple[str, ...]) -> str:
    return clean_text(".".join(path))[:300] or "body"


def _walk(value: Any, path: tuple[str, ...], *, normalise: bool, limit: int, depth: int = 0) -> Any:
    if isinstance(value, str):
        cleaned = clean_text(value)
        if cleaned is not value and not normalise:
            raise Unstorable(_path(path), "contains a NUL character or a lone surrogate")
        return cleaned
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if abs(value) >= _INT_LIMIT:
            raise Unstorable(_path(path), f"integer with more than {MAX_INT_DIGITS} digits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Unstorable(_path(path), "not a finite number")
        return value
    if isinstance(value, _Refused):
        raise Unstorable(_path(path), value.message)
    if isinstance(value, (dict, list, tuple)):
        if depth >= limit:
            raise Unstorable(_path(path), f"nested deeper than {limit} levels")
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            for key, item in value.items():
                name = clean_text(key) if isinstance(key, str) else key
                if name is not key and not normalise:
                    raise Unstorable(_path((*path, name)), "the key contains a NUL character or a lone surrogate")
                out[name] = _walk(item, (*path, str(name)), normalise=normalise, limit=limit, depth=depth + 1)
            return out
        return [_walk(item, (*path, str(i)), normalise=normalise, limit=limit, depth=depth + 1)
                for i, item in enumerate(value)]
    return value  # datetimes, decimals, UUIDs: typed values pydantic already bounded
