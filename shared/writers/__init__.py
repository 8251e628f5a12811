"""Writers: apply one envelope's change to Postgres inside the ledger's transaction.

A writer is a verb over its event's typed payload, `apply_x(cur, envelope, payload)`;
`writer_for` parses the payload inside the transaction, so a payload that does not
validate is recorded as a failure like any other write.

Each event type's writer module is imported the first time that event type is applied, so
a subscriber only loads the writers of the event types it is subscribed to (the leadgen
writer brings the Graph client and the source parsers). reply_requested is not here:
shared.replies sends it, because its outbox row must commit before the provider call.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache
from typing import Any

from shared.db import Cursor
from shared.envelope import Envelope
from shared.payloads import PAYLOAD_MODELS

Apply = Callable[[Cursor, Envelope], None]
Verb = Callable[[Cursor, Envelope, Any], None]  # (cursor, envelope, its payload as the event type's model)

WRITERS: dict[str, tuple[str, str]] = {  # event type -> (module, function)
    "lead_created": ("shared.writers.leads", "apply_lead_created"),
    "message_received": ("shared.writers.conversations", "apply_message_received"),
    "stage_changed": ("shared.writers.pipeline", "apply_stage_changed"),
    "proposal_sent": ("shared.writers.pipeline", "apply_proposal_sent"),
    "won": ("shared.writers.pipeline", "apply_won"),
    "obra_created": ("shared.writers.obras", "apply_obra_created"),
    "leadgen_received": ("shared.writers.leadgen", "apply_leadgen_received"),
    "message_status": ("shared.statuses", "apply_message_status"),
    "handoff_requested": ("shared.writers.handoffs", "apply_handoff_requested"),
    "note_added": ("shared.writers.notes", "apply_note_added"),
}


@cache
def writer_for(event_type: str) -> Apply:
    """The write for `event_type`, as the ledger calls it; KeyError for a type no writer handles."""
    module, function = WRITERS[event_type]
    verb: Verb = getattr(importlib.import_module(module), function)
    model = PAYLOAD_MODELS[event_type]

    def apply(cur: Cursor, envelope: Envelope) -> None:
        payload = envelope.typed_payload()
        if not isinstance(payload, model):
            raise TypeError(f"the {event_type} writer was given a {envelope.event_type} envelope")
        verb(cur, envelope, payload)

    return apply
