"""Obras (construction jobs) sold to a lead, linked to their proposal when it is known."""

from __future__ import annotations

from shared.db import Cursor
from shared.envelope import Envelope
from shared.payloads import ObraCreated
from shared.writers.leads import resolve_lead


def apply_obra_created(cur: Cursor, envelope: Envelope, obra: ObraCreated) -> None:
    lead_id, _, _ = resolve_lead(cur, envelope, obra)
    proposal_id = None
    if obra.proposal_ref:
        cur.execute("SELECT id FROM proposals WHERE tenant_id = %s AND proposal_ref = %s",
                    (envelope.tenant, obra.proposal_ref))
        row = cur.fetchone()
        proposal_id = str(row[0]) if row else None
    cur.execute(
        "INSERT INTO obras (tenant_id, lead_id, proposal_id, obra_ref, title, address, area_m2, start_date, status, "
        "correlation_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (tenant_id, obra_ref) DO NOTHING",
        (envelope.tenant, str(lead_id), proposal_id, obra.obra_ref, obra.title, obra.address, obra.area_m2,
         obra.start_date, obra.status, envelope.correlation_id),
    )
