"""Google Ads lead form webhooks to `lead_created` envelopes.

Answers arrive as `user_column_data[]` of `{column_id, string_value, column_name}`; each
is kept under its `column_id` (FULL_NAME, EMAIL, PHONE_NUMBER, or the question's id).
`is_test` leads (from "Send test data") are kept and flagged. The proof is `google_key`,
checked before this adapter runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.envelope import build_envelope
from shared.inbound import Inbound, Outcome
from shared.payloads import LeadCreated, PlatformId
from shared.tenants import SourceSettings
from shared.verification import require_known_id

SOURCE = "google_ads"
_EMAILS = ("EMAIL", "WORK_EMAIL")
_PHONES = ("PHONE_NUMBER", "WORK_PHONE")


class _Column(BaseModel):
    model_config = ConfigDict(extra="allow")
    column_id: str | None = None
    column_name: str | None = None
    string_value: str | None = None


class _Lead(BaseModel):
    model_config = ConfigDict(extra="allow")
    lead_id: str = Field(min_length=1, max_length=200)
    user_column_data: list[_Column] = Field(default_factory=list)
    form_id: PlatformId | None = None
    campaign_id: PlatformId | None = None
    adgroup_id: PlatformId | None = None
    creative_id: PlatformId | None = None
    gcl_id: str | None = None
    is_test: bool = False
    lead_submit_time: datetime | None = None


def adapt(inbound: Inbound, settings: SourceSettings | None = None) -> Outcome:
    lead = _Lead.model_validate(inbound.body)
    require_known_id(settings, [lead.form_id], "form_id")
    answers: dict[str, Any] = {}
    for i, column in enumerate(lead.user_column_data):
        answers[column.column_id or column.column_name or f"column_{i}"] = column.string_value
    name = answers.get("FULL_NAME") or " ".join(
        str(answers[k]) for k in ("FIRST_NAME", "LAST_NAME") if answers.get(k)) or None
    payload = LeadCreated(
        name=name,
        phone=next((answers[k] for k in _PHONES if answers.get(k)), None),
        email=next((answers[k] for k in _EMAILS if answers.get(k)), None),
        source=SOURCE,
        source_lead_id=lead.lead_id,
        form_id=lead.form_id,
        campaign_id=lead.campaign_id,
        adset_id=lead.adgroup_id,
        ad_id=lead.creative_id,
        is_test=lead.is_test or None,
        answers=answers,
        extra={"gcl_id": lead.gcl_id} if lead.gcl_id else {},
    )
    return [build_envelope(event_type="lead_created", payload=payload, tenant=inbound.tenant, source=SOURCE,
                           correlation_id=inbound.correlation_id, source_id=lead.lead_id,
                           occurred_at=lead.lead_submit_time)]
