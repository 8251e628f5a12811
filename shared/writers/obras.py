"""Obras (construction jobs) sold to a lead, linked to their proposal when it is known (ct_obra_created)."""

from __future__ import annotations

from shared.envelope import Envelope
from shared.payloads import ObraCreated
from shared.writers.calls import Call


def apply_obra_created(envelope: Envelope, obra: ObraCreated) -> Call:
    return Call("ct_obra_created", (obra.lead_id, obra.phone, obra.obra_ref, obra.title, obra.proposal_ref,
                                    obra.address, obra.area_m2, obra.start_date, obra.status))
