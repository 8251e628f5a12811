"""Notes people write on a lead (from the console), kept with their correlation id (ct_note_added)."""

from __future__ import annotations

from shared.envelope import Envelope
from shared.payloads import NoteAdded
from shared.writers.calls import Call


def apply_note_added(envelope: Envelope, note: NoteAdded) -> Call:
    return Call("ct_note_added", (note.lead_id, note.phone, note.body, note.author, note.author_id))
