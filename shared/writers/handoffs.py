"""A person takes a conversation over, or hands it back to the assistant (from the console).

The same switch the assistant uses (`shared.assistant.handoff.switch`), so `handoffs`
holds every change of hands, whoever caused it; a request for the state the
conversation is already in changes nothing.
"""

from __future__ import annotations

from shared.assistant.handoff import switch
from shared.db import Cursor
from shared.envelope import Envelope
from shared.payloads import HandoffRequested


class ConversationNotFound(LookupError):
    """The conversation is not (yet) in the tenant; raised so Pub/Sub retries, then dead-letters."""


def apply_handoff_requested(cur: Cursor, envelope: Envelope, request: HandoffRequested) -> None:
    cur.execute("SELECT 1 FROM conversations WHERE id = %s AND tenant_id = %s AND lead_id = %s",
                (str(request.conversation_id), envelope.tenant, str(request.lead_id)))
    if cur.fetchone() is None:
        raise ConversationNotFound(f"conversation {request.conversation_id} of lead {request.lead_id} "
                                   f"is not in tenant {envelope.tenant}")
    switch(cur, tenant=envelope.tenant, conversation_id=str(request.conversation_id), lead_id=str(request.lead_id),
           to=request.to, reason="operator", correlation_id=envelope.correlation_id, event_id=envelope.event_id,
           detail="console", actor=request.actor)
