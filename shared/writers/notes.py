"""Notes people write on a lead (from the console), kept with their correlation id."""

from __future__ import annotations

from shared.db import Cursor
from shared.envelope import Envelope
from shared.payloads import NoteAdded
from shared.writers.leads import resolve_lead


def apply_note_added(cur: Cursor, envelope: Envelope, note: NoteAdded) -> None:
    lead_id, _, _ = resolve_lead(cur, envelope, note)
    cur.execute(
        "INSERT INTO lead_notes (tenant_id, lead_id, body, author, author_id, event_id, correlation_id, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING",
        (envelope.tenant, str(lead_id), note.body, note.author, str(note.author_id) if note.author_id else None,
         envelope.event_id, envelope.correlation_id, envelope.occurred_at),
    )
