"""Writers: apply one envelope's change to Postgres inside the ledger's transaction.

Each event type's writer module is imported the first time that event type is applied, so
a subscriber only loads the writers of the event types it is subscribed to (the leadgen
writer brings the Graph client and the source parsers). reply_requested is not here:
shared.replies sends it, because its outbox row must commit before the provider call.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cache

from shared.db import Cursor
from shared.envelope import Envelope

Apply = Callable[[Cursor, Envelope], None]

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
    """The function that applies `event_type`; KeyError for a type no writer handles."""
    module, function = WRITERS[event_type]
    apply: Apply = getattr(importlib.import_module(module), function)
    return apply
