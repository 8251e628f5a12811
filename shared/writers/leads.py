"""Leads: found by phone (then e-mail) within the tenant, created when unknown (ct_lead_created).

An existing lead is only filled in, never overwritten: what a person or an earlier
source wrote stays.
"""

from __future__ import annotations

import json

from shared.envelope import Envelope
from shared.payloads import LeadCreated
from shared.writers.calls import Call


def apply_lead_created(envelope: Envelope, lead: LeadCreated) -> Call:
    return lead_call(lead)


def lead_call(lead: LeadCreated) -> Call:
    """The write of the lead a LeadCreated payload describes; the event gives tenant, trace and time."""
    extra = dict(lead.extra)
    if lead.source_lead_id:
        extra["source_lead_id"] = lead.source_lead_id
    # Where the lead came from and what it answered live in `extra` (no column per platform).
    extra.update({k: v for k in ("form_id", "campaign_id", "adset_id", "ad_id", "answers")
                  if (v := getattr(lead, k))})
    if lead.is_test:
        extra["is_test"] = True
    return Call("ct_lead_created", (lead.phone, lead.email, lead.name, lead.source, lead.funnel, lead.location,
                                    lead.project_type, json.dumps(extra)))
