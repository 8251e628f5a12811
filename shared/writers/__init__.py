"""Writers: apply one envelope's change to Postgres inside the ledger's transaction."""

from __future__ import annotations

from collections.abc import Callable

from shared.db import Cursor
from shared.envelope import Envelope
from shared.replies import apply_reply_requested
from shared.writers import conversations, leadgen, leads, obras, pipeline

Apply = Callable[[Cursor, Envelope], None]

APPLY: dict[str, Apply] = {
    "lead_created": leads.apply_lead_created,
    "message_received": conversations.apply_message_received,
    "stage_changed": pipeline.apply_stage_changed,
    "proposal_sent": pipeline.apply_proposal_sent,
    "won": pipeline.apply_won,
    "obra_created": obras.apply_obra_created,
    "leadgen_received": leadgen.apply_leadgen_received,
    "reply_requested": apply_reply_requested,
}
