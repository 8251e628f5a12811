"""Writers: one envelope's change to Postgres, as one call of its event type's SQL function.

A writer is a verb over its event's typed payload, `apply_x(envelope, payload) -> Call`,
that maps the payload to the function's values (shared/writers/calls.py); the ledger runs
the call in its own statement. The payload is parsed inside the ledger's `process`, so a
payload that does not validate is recorded as a failure like any other write.

Each event type's writer module is imported the first time `writer_for` is asked for
it: a subscriber asks for its own event types when it loads (shared.subscriber.prepare),
so it loads only those writers (the leadgen writer brings the Graph client and the
source parsers). reply_requested is not here:
shared.replies sends it, because its outbox row must commit before the provider call.
"""

from __future__ import annotations

import importlib
from functools import cache

from shared.payloads import PAYLOAD_MODELS
from shared.writers.calls import Verb, Writer

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
FETCHING = frozenset({"leadgen_received"})  # its verb calls the Graph API first


@cache
def writer_for(event_type: str) -> Writer:
    """The write for `event_type`, as the ledger calls it; KeyError for a type no writer handles."""
    module, function = WRITERS[event_type]
    verb: Verb = getattr(importlib.import_module(module), function)
    return Writer(event_type, verb, PAYLOAD_MODELS[event_type], fetches=event_type in FETCHING)
