"""Leads: found by phone (then e-mail) within the tenant, created when unknown.

An existing lead is only filled in, never overwritten: what a person or an earlier
source wrote stays.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from shared.db import Cursor
from shared.envelope import Envelope
from shared.payloads import LeadCreated, LeadRef


class Origin(Protocol):
    """Where a write comes from: the tenant, the source, the trace and when it happened.

    An Envelope is one; the Lead Ads writer passes its own `leadgen_received` envelope,
    so a lead it completes needs no `lead_created` envelope of its own.
    """

    @property
    def tenant(self) -> str: ...

    @property
    def source(self) -> str: ...

    @property
    def correlation_id(self) -> str: ...

    @property
    def occurred_at(self) -> datetime: ...


class LeadNotFound(LookupError):
    """A lead_id that is not (yet) in the database; raised so Pub/Sub retries, then dead-letters."""


def find_or_create_lead(
    cur: Cursor,
    origin: Origin,
    *,
    phone: str | None,
    email: str | None = None,
    name: str | None = None,
    source: str | None = None,
    fields: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> UUID:
    """The lead's id; fills in blanks on an existing lead and stamps last_correlation_id."""
    fields = {k: v for k, v in (fields or {}).items() if v is not None}
    lead_id = _find(cur, origin.tenant, phone, email)
    if lead_id is None:
        cur.execute(
            "INSERT INTO leads (tenant_id, phone, email, name, source, funnel, location, project_type, extra, "
            "stage_changed_at, correlation_id, last_correlation_id) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s) "
            "ON CONFLICT (tenant_id, phone) WHERE phone IS NOT NULL DO NOTHING RETURNING id",
            (origin.tenant, phone, email, name, source or origin.source, fields.get("funnel"),
             fields.get("location"), fields.get("project_type"), json.dumps(extra or {}), origin.occurred_at,
             origin.correlation_id, origin.correlation_id),
        )
        row = cur.fetchone()
        if row is not None:
            return UUID(str(row[0]))
        lead_id = _find(cur, origin.tenant, phone, email)  # inserted concurrently
        if lead_id is None:
            raise RuntimeError("lead insert conflicted but the lead is not visible; retrying")
    cur.execute(
        "UPDATE leads SET phone = COALESCE(phone, %s), email = COALESCE(email, %s), name = COALESCE(name, %s), "
        "funnel = COALESCE(funnel, %s), location = COALESCE(location, %s), "
        "project_type = COALESCE(project_type, %s), extra = %s::jsonb || extra, "
        "last_correlation_id = %s, updated_at = now() WHERE id = %s",
        (phone, email, name, fields.get("funnel"), fields.get("location"), fields.get("project_type"),
         json.dumps(extra or {}), origin.correlation_id, str(lead_id)),
    )
    return lead_id


def _find(cur: Cursor, tenant: str, phone: str | None, email: str | None) -> UUID | None:
    if phone:
        cur.execute("SELECT id FROM leads WHERE tenant_id = %s AND phone = %s FOR UPDATE", (tenant, phone))
        row = cur.fetchone()
        if row:
            return UUID(str(row[0]))
    if email:
        # An e-mail only joins a lead that has no other phone: two phones are two people.
        cur.execute("SELECT id FROM leads WHERE tenant_id = %s AND lower(email) = lower(%s) "
                    "AND (phone IS NULL OR %s::text IS NULL) ORDER BY created_at LIMIT 1 FOR UPDATE",
                    (tenant, email, phone))
        row = cur.fetchone()
        if row:
            return UUID(str(row[0]))
    return None


def resolve_lead(cur: Cursor, envelope: Envelope, ref: LeadRef) -> tuple[UUID, str, datetime]:
    """(id, stage, stage_changed_at) of the lead an event names, locked for update."""
    lead_id = ref.lead_id if ref.lead_id is not None else find_or_create_lead(cur, envelope, phone=ref.phone)
    cur.execute("SELECT id, stage, stage_changed_at FROM leads WHERE id = %s AND tenant_id = %s FOR UPDATE",
                (str(lead_id), envelope.tenant))
    row = cur.fetchone()
    if row is None:
        raise LeadNotFound(f"lead {lead_id} does not exist in tenant {envelope.tenant}")
    return UUID(str(row[0])), str(row[1]), row[2]


def apply_lead_created(cur: Cursor, envelope: Envelope, lead: LeadCreated) -> None:
    write_lead(cur, lead, envelope)


def write_lead(cur: Cursor, lead: LeadCreated, origin: Origin) -> None:
    """Find or create the lead a LeadCreated payload describes; `origin` gives tenant, trace and time."""
    extra = dict(lead.extra)
    if lead.source_lead_id:
        extra["source_lead_id"] = lead.source_lead_id
    # Where the lead came from and what it answered live in `extra` (no column per platform).
    extra.update({k: v for k in ("form_id", "campaign_id", "adset_id", "ad_id", "answers")
                  if (v := getattr(lead, k))})
    if lead.is_test:
        extra["is_test"] = True
    find_or_create_lead(
        cur, origin, phone=lead.phone, email=lead.email, name=lead.name, source=lead.source,
        fields={"funnel": lead.funnel, "location": lead.location, "project_type": lead.project_type}, extra=extra,
    )
