"""A person takes a conversation over, or hands it back to the assistant (from the console).

The same switch the assistant uses (ct_switch, `shared.assistant.handoff.switch`), so
`handoffs` holds every change of hands, whoever caused it; a request for the state the
conversation is already in changes nothing. A conversation not (yet) in the tenant is
refused (ConversationNotFound), so Pub/Sub retries, then dead-letters.
"""

from __future__ import annotations

from shared.envelope import Envelope
from shared.payloads import HandoffRequested
from shared.writers.calls import Call


def apply_handoff_requested(envelope: Envelope, request: HandoffRequested) -> Call:
    return Call("ct_handoff_requested", (request.conversation_id, request.lead_id, request.to, request.actor))
