"""What the console reads: the inbox, a lead's timeline, the pipeline board.

Every statement filters on the session's tenant (`tenant_id = %s` on every table it
touches), so a lead id from another tenant reads as nothing at all: the caller answers 404.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from shared.db import Cursor, rows_as_dicts
from shared.payloads import STAGES


def _uuid(value: str) -> str | None:
    try:
        return str(UUID(value))
    except ValueError:
        return None


def inbox(cur: Cursor, tenant: str, limit: int = 200) -> list[dict[str, Any]]:
    """Conversations, those with a person first, then the lead waiting longest for an answer.

    `waiting_since` is the lead's oldest message after the last outbound one (None when
    the last word was ours). Messages are found by lead (indexed on lead_id, sent_at); a
    lead has one WhatsApp conversation.
    """
    cur.execute(
        """
        SELECT c.id AS conversation_id, c.lead_id, c.handled_by, c.provider, c.last_message_at,
               l.name, l.phone, l.stage,
               (SELECT min(m.sent_at) FROM messages m
                 WHERE m.lead_id = c.lead_id AND m.tenant_id = %s AND m.direction = 'inbound'
                   AND m.sent_at > COALESCE((SELECT max(o.sent_at) FROM messages o WHERE o.lead_id = c.lead_id
                                              AND o.tenant_id = %s AND o.direction = 'outbound'), '-infinity'))
                 AS waiting_since,
               (SELECT m.body FROM messages m WHERE m.lead_id = c.lead_id AND m.tenant_id = %s
                 ORDER BY m.sent_at DESC LIMIT 1) AS last_body,
               (SELECT m.direction FROM messages m WHERE m.lead_id = c.lead_id AND m.tenant_id = %s
                 ORDER BY m.sent_at DESC LIMIT 1) AS last_direction
          FROM conversations c JOIN leads l ON l.id = c.lead_id AND l.tenant_id = %s
         WHERE c.tenant_id = %s
         ORDER BY (c.handled_by = 'human') DESC, waiting_since ASC NULLS LAST, c.last_message_at DESC
         LIMIT %s
        """,
        (tenant, tenant, tenant, tenant, tenant, tenant, limit))
    return rows_as_dicts(cur)


def lead(cur: Cursor, tenant: str, lead_id: str) -> dict[str, Any] | None:
    """The lead with its conversation (if any), or None when it is not this tenant's."""
    lid = _uuid(lead_id)
    if lid is None:
        return None
    cur.execute(
        "SELECT l.*, c.id AS conversation_id, c.handled_by, c.provider AS conversation_provider, c.chat_id "
        "FROM leads l LEFT JOIN conversations c ON c.lead_id = l.id AND c.tenant_id = %s AND c.channel = 'whatsapp' "
        "WHERE l.id = %s AND l.tenant_id = %s", (tenant, lid, tenant))
    rows = rows_as_dicts(cur)
    return rows[0] if rows else None


@dataclass
class Item:
    """One line of a lead's timeline."""

    at: datetime
    kind: str  # message_in, message_out, turn, move, handoff, proposal, obra, note, failed
    title: str
    body: str | None
    correlation_id: str
    detail: dict[str, Any] = field(default_factory=dict)


def _lead_rows(cur: Cursor, tenant: str, lead_id: str, table: str, columns: str) -> list[dict[str, Any]]:
    """`columns` and the correlation id of the lead's rows in `table` (names written here, never input)."""
    cur.execute(f"SELECT {columns}, correlation_id FROM {table} WHERE lead_id = %s AND tenant_id = %s",  # noqa: S608
                (lead_id, tenant))
    return rows_as_dicts(cur)


def timeline(cur: Cursor, tenant: str, lead_id: str) -> list[Item]:
    """Everything that happened to the lead, oldest first, each with its correlation id."""
    items: list[Item] = []
    cur.execute(
        "SELECT m.direction, m.body, m.message_type, m.sent_by, m.sent_at, m.correlation_id, m.sender_name, "
        "u.name AS user_name FROM messages m LEFT JOIN console_users u ON u.id = m.sent_by_user "
        "WHERE m.lead_id = %s AND m.tenant_id = %s ORDER BY m.sent_at", (lead_id, tenant))
    for m in rows_as_dicts(cur):
        if m["direction"] == "inbound":
            items.append(Item(m["sent_at"], "message_in", m["sender_name"] or "Lead", m["body"], m["correlation_id"],
                              {"type": m["message_type"]}))
        else:
            who = (m["user_name"] or "Atendente") if m["sent_by"] == "human" else (
                "Assistente" if m["sent_by"] == "assistant" else "Empresa")
            items.append(Item(m["sent_at"], "message_out", who, m["body"], m["correlation_id"],
                              {"sent_by": m["sent_by"], "status": "enviada"}))
    for t in _lead_rows(cur, tenant, lead_id, "assistant_turns", "status, detail, created_at"):
        items.append(Item(t["created_at"], "turn", f"Assistente: {TURN_LABELS.get(t['status'], t['status'])}",
                          t["detail"], t["correlation_id"]))
    cur.execute("SELECT p.from_stage, p.to_stage, p.reason, p.applied, p.occurred_at, p.correlation_id, "
                "u.name AS user_name FROM pipeline_moves p LEFT JOIN console_actions a "
                "ON a.event_id = p.event_id AND a.tenant_id = %s LEFT JOIN console_users u ON u.id = a.user_id "
                "WHERE p.lead_id = %s AND p.tenant_id = %s ORDER BY p.occurred_at", (tenant, lead_id, tenant))
    for p in rows_as_dicts(cur):
        title = f"Etapa: {stage_label(p['from_stage'])} → {stage_label(p['to_stage'])}"
        if not p["applied"]:
            title += " (fora de ordem, não aplicada)"
        items.append(Item(p["occurred_at"], "move", title, p["reason"], p["correlation_id"],
                          {"by": p["user_name"]}))
    cur.execute("SELECT h.handled_by, h.reason, COALESCE(u.name, h.actor) AS actor, h.created_at, h.correlation_id "
                "FROM handoffs h LEFT JOIN console_actions a ON a.event_id = h.event_id AND a.tenant_id = %s "
                "LEFT JOIN console_users u ON u.id = a.user_id "
                "WHERE h.lead_id = %s AND h.tenant_id = %s ORDER BY h.created_at", (tenant, lead_id, tenant))
    for h in rows_as_dicts(cur):
        title = "Atendimento assumido por uma pessoa" if h["handled_by"] == "human" else "Devolvido ao assistente"
        items.append(Item(h["created_at"], "handoff", title, HANDOFF_REASONS.get(h["reason"], h["reason"]),
                          h["correlation_id"], {"by": h["actor"]}))
    for pr in _lead_rows(cur, tenant, lead_id, "proposals",
                         "proposal_ref, amount, currency, status, COALESCE(sent_at, created_at) AS at"):
        status = "ganha" if pr["status"] == "won" else "enviada"
        items.append(Item(pr["at"], "proposal", f"Proposta {pr['proposal_ref']} ({status})",
                          f"{pr['currency']} {pr['amount']}" if pr["amount"] is not None else None,
                          pr["correlation_id"]))
    for o in _lead_rows(cur, tenant, lead_id, "obras", "obra_ref, title, status, address, created_at"):
        items.append(Item(o["created_at"], "obra", f"Obra {o['obra_ref']}: {o['title']} ({o['status']})",
                          o["address"], o["correlation_id"]))
    for n in _lead_rows(cur, tenant, lead_id, "lead_notes", "body, author, created_at"):
        items.append(Item(n["created_at"], "note", f"Nota de {n['author']}", n["body"], n["correlation_id"]))
    cur.execute("SELECT e.event_type, e.attempts, e.last_error, e.updated_at, e.correlation_id FROM console_actions a "
                "JOIN events e ON e.event_id = a.event_id AND e.status = 'failed' AND e.tenant_id = %s "
                "WHERE a.lead_id = %s AND a.tenant_id = %s", (tenant, lead_id, tenant))
    for f in rows_as_dicts(cur):  # what someone asked here that has not gone through (yet): retried, then dead-lettered
        items.append(Item(f["updated_at"], "failed", f"Falhou: {ACTION_LABELS.get(f['event_type'], f['event_type'])} "
                          f"({f['attempts']} tentativa(s); o sistema tenta de novo)", (f["last_error"] or "")[:300],
                          f["correlation_id"]))
    items.sort(key=lambda i: i.at)
    return items


def last_inbound_event(cur: Cursor, tenant: str, lead_id: str) -> str | None:
    """The event id of the lead's latest message (what a person's reply answers)."""
    cur.execute("SELECT event_id FROM messages WHERE lead_id = %s AND tenant_id = %s "
                "AND direction = 'inbound' ORDER BY sent_at DESC LIMIT 1", (lead_id, tenant))
    row = cur.fetchone()
    return str(row[0]) if row else None


def board(cur: Cursor, tenant: str, per_stage: int = 50) -> list[dict[str, Any]]:
    """One column per stage: its count, and its leads, longest in the stage first."""
    cur.execute("SELECT stage, count(*) FROM leads WHERE tenant_id = %s GROUP BY stage", (tenant,))
    counts = {str(r[0]): int(r[1]) for r in cur.fetchall()}
    cur.execute(
        "SELECT id, name, phone, email, source, stage, stage_changed_at FROM ("
        " SELECT *, row_number() OVER (PARTITION BY stage ORDER BY stage_changed_at) AS n FROM leads"
        " WHERE tenant_id = %s) ranked WHERE n <= %s ORDER BY stage_changed_at", (tenant, per_stage))
    leads = rows_as_dicts(cur)
    return [{"stage": stage, "label": stage_label(stage), "count": counts.get(stage, 0),
             "leads": [lead for lead in leads if lead["stage"] == stage]} for stage in STAGES]


def tenants(cur: Cursor) -> list[dict[str, Any]]:
    cur.execute("SELECT id, name FROM tenants WHERE active ORDER BY id")
    return rows_as_dicts(cur)


STAGE_LABELS = {"novo": "Novo", "triagem": "Triagem", "qualificado": "Qualificado", "proposta": "Proposta",
                "negociacao": "Negociação", "ganho": "Ganho", "perdido": "Perdido"}
TURN_LABELS = {"pending": "pensando", "answered": "respondeu", "superseded": "aguardou a próxima mensagem",
               "skipped": "não respondeu", "handoff": "passou para uma pessoa", "over_budget": "sem orçamento"}
ACTION_LABELS = {"reply_requested": "envio da resposta", "stage_changed": "mudança de etapa",
                 "handoff_requested": "troca de atendimento", "note_added": "nota"}
HANDOFF_REASONS = {"lead_asked": "o lead pediu uma pessoa", "model": "decisão do assistente",
                   "seller_message": "um vendedor escreveu pelo WhatsApp", "operator": "ação manual"}


def stage_label(stage: str | None) -> str:
    return STAGE_LABELS.get(stage or "", stage or "—")
