"""What the assistant knows when it answers: this conversation only, in this tenant only.

Read from the rows the conversations writer keeps; nothing from another conversation
or another tenant can reach the prompt because every query is scoped by both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.assistant.config import FactSpec
from shared.assistant.prompt import Turn
from shared.db import Cursor


@dataclass(frozen=True)
class Context:
    conversation_id: str
    lead_id: str
    handled_by: str
    stage: str
    latest_inbound_id: str | None  # provider_message_id of the newest message from the lead
    message_sent_by: str | None  # who wrote the message this turn is about (outbound: assistant or a person)
    history: list[Turn]
    known_facts: dict[str, Any]


def load(cur: Cursor, *, tenant: str, provider: str, provider_message_id: str, limit: int,
         facts: dict[str, FactSpec]) -> Context | None:
    """The context of one stored message, or None while the writer has not stored it yet."""
    cur.execute("SELECT conversation_id, lead_id, sent_by FROM messages WHERE tenant_id = %s AND provider = %s "
                "AND provider_message_id = %s", (tenant, provider, provider_message_id))
    row = cur.fetchone()
    if row is None:
        return None
    conversation_id, lead_id, sent_by = str(row[0]), str(row[1]), row[2]
    cur.execute("SELECT handled_by FROM conversations WHERE id = %s AND tenant_id = %s", (conversation_id, tenant))
    handled_by = str(cur.fetchone()[0])
    cur.execute("SELECT provider_message_id FROM messages WHERE tenant_id = %s AND conversation_id = %s "
                "AND direction = 'inbound' ORDER BY sent_at DESC, created_at DESC LIMIT 1", (tenant, conversation_id))
    latest = cur.fetchone()
    cur.execute("SELECT direction, body FROM messages WHERE tenant_id = %s AND conversation_id = %s "
                "AND body IS NOT NULL ORDER BY sent_at DESC, created_at DESC LIMIT %s",
                (tenant, conversation_id, limit))
    history = [Turn("lead" if d == "inbound" else "business", str(b)) for d, b in reversed(cur.fetchall())]
    cur.execute("SELECT name, location, project_type, extra, stage FROM leads WHERE id = %s AND tenant_id = %s",
                (lead_id, tenant))
    name, location, project_type, extra, stage = cur.fetchone()
    columns = {"name": name, "location": location, "project_type": project_type}
    known: dict[str, Any] = {}
    for fact, spec in facts.items():
        value = columns[spec.column] if spec.column else (extra or {}).get(fact)
        if value not in (None, ""):
            known[fact] = value
    return Context(conversation_id, lead_id, handled_by, str(stage), str(latest[0]) if latest else None,
                   sent_by, history, known)


def lead_texts(history: list[Turn], last: int = 3) -> list[str]:
    """The lead's latest messages: what the catalog search looks for."""
    return [t.text for t in history if t.role == "lead"][-last:]


def pending_lead_texts(history: list[Turn]) -> list[str]:
    """What the lead wrote since the business last spoke (the messages this turn answers)."""
    texts: list[str] = []
    for turn in reversed(history):
        if turn.role == "business":
            break
        texts.append(turn.text)
    return list(reversed(texts))
