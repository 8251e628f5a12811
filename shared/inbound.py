"""What a webhook brings in and what a source adapter answers: the edge's contract with the parsers.

The source parsers (shared/sources/) and the proof-of-origin checks import these types,
not the HTTP pipeline (shared/edge.py), so a parser is read and tested without the web layer.
No framework, no I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from shared import storable
from shared.config import Settings
from shared.envelope import Envelope


class EdgeError(Exception):
    """A request the edge refuses, with the status and the fields at fault."""

    def __init__(self, status: int, error: str, message: str, fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.fields = fields or []


@dataclass(frozen=True)
class Inbound:
    """What an adapter sees of a request, after the edge checked its shape."""

    body: Any
    raw: bytes
    headers: Mapping[str, str]
    path: str
    tenant: str
    correlation_id: str
    settings: Settings
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Ignored:
    """A well-formed request that carries nothing to publish (own message, status, group)."""

    reason: str


@dataclass(frozen=True)
class Reply:
    """An answer the adapter gives itself (a verification handshake, say)."""

    status: int
    body: str
    content_type: str = "text/plain"


Outcome = Sequence[Envelope] | Ignored | Reply
Adapter = Callable[[Inbound], Outcome]


@dataclass(frozen=True)
class RawRequest:
    """A request as the edge receives it, before its body is read (framework-neutral)."""

    method: str
    path: str
    headers: Mapping[str, str]
    content_type: str | None
    content_length: int | None
    read_body: Callable[[int], bytes]  # reads at most n bytes
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """Where a request goes: its tenant, the source adapter, and the proof it must carry.

    `verify` sees the raw bytes before anything is parsed and raises EdgeError (401) when
    the proof of origin is missing or wrong.
    """

    tenant: str
    source: str
    adapter: Adapter
    verify: Callable[[RawRequest, bytes], None] | None = None
    methods: tuple[str, ...] = ("POST",)


Router = Callable[[RawRequest], Route]


def validation_fields(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    """pydantic's errors as [{field, message}], field paths dotted."""
    out = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        message = err["msg"]
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, storable.Unstorable):  # it names the part at fault, below the field
            path = ".".join(p for p in (path, "" if cause.field == "body" else cause.field) if p)
            message = cause.message
        out.append({"field": f"{prefix}{path}" if path else prefix.rstrip(".") or "body", "message": message})
    return out
