"""Meta Lead Ads `leadgen` webhooks to `leadgen_received` envelopes.

The webhook carries only ids. The edge must not call the Graph API (it never waits on
anything but Pub/Sub), so it publishes the ids and `leadgen_fetcher` fetches the
answers, retrying and finally dead-lettering when it cannot.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.envelope import Envelope, build_envelope
from shared.inbound import Ignored, Inbound, Outcome
from shared.meta_leads import SOURCE
from shared.payloads import LeadgenReceived
from shared.sources.messages import validate_part
from shared.tenants import SourceSettings
from shared.verification import require_known_id


class _Change(BaseModel):
    model_config = ConfigDict(extra="allow")
    field: str = ""
    value: Any = None


class _Entry(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | int | None = None
    changes: list[_Change] = Field(default_factory=list)


class _Webhook(BaseModel):
    model_config = ConfigDict(extra="allow")
    object: str | None = None
    entry: list[_Entry] = Field(min_length=1)


def adapt(inbound: Inbound, settings: SourceSettings | None = None) -> Outcome:
    webhook = _Webhook.model_validate(inbound.body)
    envelopes: list[Envelope] = []
    for e, entry in enumerate(webhook.entry):
        for c, change in enumerate(entry.changes):
            if change.field != "leadgen":
                continue
            path = f"entry.{e}.changes.{c}.value."
            value = dict(change.value) if isinstance(change.value, dict) else {}
            if entry.id is not None:
                value.setdefault("page_id", entry.id)
            lead = validate_part(LeadgenReceived, {k: v for k, v in value.items()
                                                   if k in LeadgenReceived.model_fields}, path)
            require_known_id(settings, [lead.page_id], f"{path}page_id")
            envelopes.append(build_envelope(event_type="leadgen_received", payload=lead, tenant=inbound.tenant,
                                            source=SOURCE, correlation_id=inbound.correlation_id,
                                            source_id=lead.leadgen_id, occurred_at=lead.created_time))
    return envelopes or Ignored("no leadgen change in the webhook")
