"""Meta Lead Ads `leadgen` webhooks to `leadgen_received` envelopes.

The webhook carries only ids. The edge must not call the Graph API (it never waits on
anything but Pub/Sub), so it publishes the ids and `leadgen_fetcher` fetches the
answers, retrying and finally dead-lettering when it cannot.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.edge import Ignored, Inbound, Outcome
from shared.envelope import Envelope, build_envelope
from shared.payloads import LeadCreated, LeadgenReceived
from shared.sources.messages import validate_part
from shared.tenants import SourceSettings
from shared.verification import require_known_id

SOURCE = "meta_leadgen"


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
            if settings is not None:
                require_known_id(settings.ids, [lead.page_id], f"{path}page_id")
            envelopes.append(build_envelope(event_type="leadgen_received", payload=lead, tenant=inbound.tenant,
                                            source=SOURCE, correlation_id=inbound.correlation_id,
                                            source_id=lead.leadgen_id, occurred_at=lead.created_time))
    return envelopes or Ignored("no leadgen change in the webhook")


TEST_LEAD_MARK = "<test lead:"  # Meta's Lead Ads Testing Tool fills every answer with "<test lead: dummy data ...>"


def lead_from_graph(data: dict[str, Any], ref: LeadgenReceived) -> LeadCreated | None:
    """The Graph API lead (`field_data[]` of `{name, values}`) as `lead_created`.

    None for a test lead with no usable contact (the testing tool's dummy data); a real
    lead with no usable contact raises ValueError, so it retries and is dead-lettered.
    """
    answers: dict[str, Any] = {}
    for i, item in enumerate(data.get("field_data") or []):
        if not isinstance(item, dict):
            continue
        raw_values = item.get("values")
        values: list[Any] = raw_values if isinstance(raw_values, list) else []
        answers[str(item.get("name") or f"field_{i}")] = values[0] if len(values) == 1 else values
    is_test = any(isinstance(v, str) and v.startswith(TEST_LEAD_MARK) for v in answers.values())
    name = answers.get("full_name") or " ".join(
        str(answers[k]) for k in ("first_name", "last_name") if isinstance(answers.get(k), str)) or None
    fields: dict[str, Any] = {
        "name": name if isinstance(name, str) else None,
        "phone": answers.get("phone_number") if isinstance(answers.get("phone_number"), str) else None,
        "email": answers.get("email") if isinstance(answers.get("email"), str) else None,
        "source": SOURCE,
        "source_lead_id": ref.leadgen_id,
        "form_id": data.get("form_id") or ref.form_id,
        "campaign_id": data.get("campaign_id"),
        "adset_id": data.get("adset_id") or ref.adgroup_id,
        "ad_id": data.get("ad_id") or ref.ad_id,
        "is_test": is_test or None,
        "answers": answers,
        "extra": {k: data[k] for k in ("is_organic", "platform", "created_time") if k in data},
    }
    try:
        return LeadCreated.model_validate(fields)
    except ValidationError as exc:
        bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
        usable = {k: (None if k in bad and k in ("name", "phone", "email") else v) for k, v in fields.items()}
        try:
            return LeadCreated.model_validate(usable)  # keep the lead by what is valid; answers keep the rest
        except ValidationError:
            if is_test:
                return None
            raise ValueError(f"lead {ref.leadgen_id} has no usable phone or e-mail") from exc
