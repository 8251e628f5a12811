"""Pipeline: stage moves, proposals and wins (ct_stage_changed, ct_proposal_sent, ct_won).

Events may arrive out of order, so a move older than the lead's current stage is
kept in the history (applied = false) but never moves the lead back. A stage time
further ahead of our clock than the skew allowance (written before the edge bounded
occurred_at) is not believed, so it cannot freeze the lead: `believed_until` is that bound.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shared.envelope import CLOCK_SKEW, Envelope
from shared.payloads import ProposalSent, StageChanged, Won
from shared.writers.calls import Call

PROPOSAL_STAGE = "proposta"
WON_STAGE = "ganho"


def believed_until() -> datetime:
    return datetime.now(UTC) + CLOCK_SKEW


def apply_stage_changed(envelope: Envelope, change: StageChanged) -> Call:
    return Call("ct_stage_changed", (change.lead_id, change.phone, change.to_stage, change.reason, change.from_stage,
                                     believed_until()))


def apply_proposal_sent(envelope: Envelope, proposal: ProposalSent) -> Call:
    return Call("ct_proposal_sent", (proposal.lead_id, proposal.phone, proposal.proposal_ref, proposal.amount,
                                     proposal.currency, proposal.description, PROPOSAL_STAGE,
                                     f"proposta {proposal.proposal_ref} enviada", believed_until()))


def apply_won(envelope: Envelope, won: Won) -> Call:
    return Call("ct_won", (won.lead_id, won.phone, won.proposal_ref, won.amount, WON_STAGE,
                           won.reason or "negócio fechado", believed_until()))
