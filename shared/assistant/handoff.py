"""Handoff between the assistant and people: detecting a request for a person, and the switch.

A switch updates `conversations.handled_by` and writes a `handoffs` row with the
correlation id of the message that caused it, so the trace shows who has the lead
(ct_switch, sql/030_write_functions.sql: the console's handoff writer makes the same switch).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Literal

from shared.db import Cursor

HandledBy = Literal["assistant", "human"]
Reason = Literal["lead_asked", "model", "seller_message", "operator"]


def normalize(text: str) -> str:
    """Lower case without accents, so 'Atendênte' and 'atendente' match the same phrase."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def asks_for_person(texts: Iterable[str], phrases: Iterable[str]) -> bool:
    """True when any of the lead's messages matches one of the tenant's phrases (regular expressions)."""
    patterns = [re.compile(normalize(p)) for p in phrases]
    return any(p.search(normalize(text)) for text in texts for p in patterns)


def switch(cur: Cursor, *, tenant: str, conversation_id: str, lead_id: str, to: HandledBy, reason: Reason,
           correlation_id: str, event_id: str | None = None, detail: str | None = None,
           actor: str | None = None) -> bool:
    """Hand the conversation to `to`; False (and nothing recorded) when it already was (ct_switch)."""
    cur.execute("SELECT ct_switch(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (tenant, conversation_id, lead_id, to, reason, correlation_id, event_id, detail, actor))
    return bool(cur.fetchone()[0])
