"""Pipeline: stage moves, proposals and wins.

Events may arrive out of order, so a move older than the lead's current stage is
kept in the history (applied = false) but never moves the lead back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from shared.db import Cursor
from shared.envelope import CLOCK_SKEW, Envelope
from shared.payloads import LeadRef, ProposalSent, StageChanged, Won
from shared.writers.leads import resolve_lead

PROPOSAL_STAGE = "proposta"
WON_STAGE = "ganho"


def move_stage(cur: Cursor, envelope: Envelope, ref: LeadRef, to_stage: str, reason: str | None,
               from_stage: str | None = None) -> bool:
    """Record the move; apply it unless a newer one already did. Returns whether it applied."""
    lead_id, current, changed_at = resolve_lead(cur, envelope, ref)
    applied = _is_current(envelope, changed_at)
    cur.execute(
        "INSERT INTO pipeline_moves (tenant_id, lead_id, from_stage, to_stage, reason, applied, occurred_at, "
        "event_id, correlation_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (envelope.tenant, str(lead_id), from_stage or current, to_stage, reason, applied, envelope.occurred_at,
         envelope.event_id, envelope.correlation_id),
    )
    if applied:
        cur.execute("UPDATE leads SET stage = %s, stage_changed_at = %s, last_correlation_id = %s, "
                    "updated_at = now() WHERE id = %s",
                    (to_stage, envelope.occurred_at, envelope.correlation_id, str(lead_id)))
    return applied


def _is_current(envelope: Envelope, stage_changed_at: datetime) -> bool:
    """Newer than the lead's stage. A stage time further ahead of our clock than the skew allowance
    (written before the edge bounded occurred_at) is not believed, so it cannot freeze the lead."""
    return envelope.occurred_at >= stage_changed_at or stage_changed_at > datetime.now(UTC) + CLOCK_SKEW


def apply_stage_changed(cur: Cursor, envelope: Envelope, change: StageChanged) -> None:
    move_stage(cur, envelope, change, change.to_stage, change.reason, change.from_stage)


def apply_proposal_sent(cur: Cursor, envelope: Envelope, proposal: ProposalSent) -> None:
    lead_id, _, _ = resolve_lead(cur, envelope, proposal)
    _upsert_proposal(cur, envelope, lead_id, proposal.proposal_ref, proposal)
    move_stage(cur, envelope, LeadRef(lead_id=lead_id), PROPOSAL_STAGE, f"proposta {proposal.proposal_ref} enviada")


def apply_won(cur: Cursor, envelope: Envelope, won: Won) -> None:
    lead_id, _, _ = resolve_lead(cur, envelope, won)
    if won.proposal_ref:
        cur.execute(
            "INSERT INTO proposals (tenant_id, lead_id, proposal_ref, amount, status, won_at, correlation_id) "
            "VALUES (%s, %s, %s, %s, 'won', %s, %s) ON CONFLICT (tenant_id, proposal_ref) DO UPDATE SET "
            "status = 'won', won_at = EXCLUDED.won_at, amount = COALESCE(EXCLUDED.amount, proposals.amount), "
            "correlation_id = EXCLUDED.correlation_id, updated_at = now()",
            (envelope.tenant, str(lead_id), won.proposal_ref, won.amount, envelope.occurred_at,
             envelope.correlation_id),
        )
    move_stage(cur, envelope, LeadRef(lead_id=lead_id), WON_STAGE, won.reason or "negócio fechado")


def _upsert_proposal(cur: Cursor, envelope: Envelope, lead_id: UUID, ref: str, proposal: ProposalSent) -> None:
    cur.execute(
        "INSERT INTO proposals (tenant_id, lead_id, proposal_ref, amount, currency, description, status, sent_at, "
        "correlation_id) VALUES (%s, %s, %s, %s, %s, %s, 'sent', %s, %s) "
        "ON CONFLICT (tenant_id, proposal_ref) DO UPDATE SET amount = EXCLUDED.amount, "
        "currency = EXCLUDED.currency, description = COALESCE(EXCLUDED.description, proposals.description), "
        "sent_at = EXCLUDED.sent_at, correlation_id = EXCLUDED.correlation_id, updated_at = now()",
        (envelope.tenant, str(lead_id), ref, proposal.amount, proposal.currency, proposal.description,
         envelope.occurred_at, envelope.correlation_id),
    )
