"""A write as one call of its SQL function (sql/030_write_functions.sql), and what those functions refuse.

Every event type's write is a function `ct_<event type>(event, values...)`: the event as
the ledger records it (`ct_event`), then the payload's values, mapped by the event type's
verb (`apply_x`). The ledger runs it in the same statement as its own bookkeeping, so a
write is one round trip. A refusal meant for a retry or a person carries a SQLSTATE of
class CT, raised here as the writer's Python exception with the function's message.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.db import Cursor
from shared.envelope import Envelope

# The ct_event row, as %s placeholders for `event_values`.
EVENT_ROW = "ROW(%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)::ct_event"
_FUNCTION = re.compile(r"^ct_[a-z_]+$")  # a write function's name: put in SQL text, so never anything else


def event_values(envelope: Envelope, message_id: str | None) -> tuple[object, ...]:
    """The ct_event's values; the envelope as JSON straight from pydantic (one pass, not a dict then json.dumps)."""
    return (envelope.event_id, envelope.event_type, envelope.tenant, envelope.source, envelope.correlation_id,
            message_id, envelope.model_dump_json(), envelope.occurred_at, envelope.received_at)


@dataclass(frozen=True)
class Call:
    """`function(event, *arguments)`; the function's name is fixed text, never data."""

    function: str
    arguments: tuple[object, ...]

    def __post_init__(self) -> None:
        if not _FUNCTION.match(self.function):
            raise ValueError(f"{self.function!r} is not a write function's name")

    def sql(self, event: str) -> str:
        """The call with `event` (SQL for a ct_event) first and a placeholder per argument."""
        return f"{self.function}({event}{', %s' * len(self.arguments)})"


Verb = Callable[[Envelope, Any], Call | None]  # (envelope, its payload as the event type's model) -> the write


@dataclass(frozen=True)
class Writer:
    """An event type's write: its verb, and the payload model it takes."""

    event_type: str
    verb: Verb
    model: type
    fetches: bool = False  # the verb calls another service: not for an event already processed

    def call(self, envelope: Envelope) -> Call | None:
        """The write's call; None when there is nothing to write. Refuses another event type's envelope."""
        payload = envelope.typed_payload()
        if not isinstance(payload, self.model):
            raise TypeError(f"the {self.event_type} writer was given a {envelope.event_type} envelope")
        return self.verb(envelope, payload)

    def __call__(self, cur: Cursor, envelope: Envelope) -> None:
        """The write alone, in the caller's transaction (the ledger's own statement includes it)."""
        call = self.call(envelope)
        if call is not None:
            execute(cur, f"SELECT {call.sql(EVENT_ROW)}", (*event_values(envelope, None), *call.arguments))


class LeadNotFound(LookupError):
    """A lead_id that is not (yet) in the database; raised so Pub/Sub retries, then dead-letters."""


class ConversationNotFound(LookupError):
    """The conversation is not (yet) in the tenant; raised so Pub/Sub retries, then dead-letters."""


class ConcurrentWrite(RuntimeError):
    """A concurrent delivery holds what this one needs and rolled back, or is not visible yet; retried."""


_REFUSALS: dict[str, type[Exception]] = {"CT404": LeadNotFound, "CT410": ConversationNotFound,
                                         "CT409": ConcurrentWrite}


def execute(cur: Cursor, sql: str, params: tuple[object, ...]) -> None:
    """`cur.execute`, with a CT refusal raised as its Python exception."""
    try:
        cur.execute(sql, params)
    except Exception as exc:
        refusal = _refused(exc)
        if refusal is None:
            raise
        raise refusal from exc


def _refused(exc: BaseException) -> Exception | None:
    """The Python exception for a server error carrying a CT SQLSTATE (pg8000 gives its fields as a dict)."""
    fields = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    kind = _REFUSALS.get(str(fields.get("C")))
    return kind(str(fields.get("M", ""))) if kind is not None else None
