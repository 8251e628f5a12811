"""Typeform `form_response` webhooks to `lead_created` envelopes.

Every answer is kept under its field's `ref` (stable across form edits, unlike the
question text), its value read by the answer's `type`. The e-mail and phone answers
become the lead's contact; answers whose ref names a name (`name`, `nome`, ...) its name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.edge import Ignored, Inbound, Outcome
from shared.envelope import build_envelope
from shared.payloads import LeadCreated
from shared.sources.messages import validate_part
from shared.tenants import SourceSettings
from shared.verification import require_known_id

SOURCE = "typeform"
_NAME_REFS = ("name", "nome")


class _Field(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    ref: str | None = None
    type: str | None = None


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = Field(min_length=1)
    field: _Field


class _FormResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    form_id: str = Field(min_length=1, max_length=200)
    token: str = Field(min_length=1, max_length=200)
    submitted_at: datetime | None = None
    hidden: dict[str, Any] = Field(default_factory=dict)
    answers: list[_Answer] = Field(default_factory=list)


class _Webhook(BaseModel):
    model_config = ConfigDict(extra="allow")
    event_id: str | None = None
    event_type: str = Field(min_length=1)
    form_response: Any = None


def answer_value(answer: _Answer) -> Any:
    """The answer's value by its type: `choice` -> label, `choices` -> labels, else the typed field."""
    raw = (answer.model_extra or {}).get(answer.type)
    if answer.type == "choice" and isinstance(raw, dict):
        return raw.get("label", raw.get("other"))
    if answer.type == "choices" and isinstance(raw, dict):
        labels = list(raw.get("labels") or [])
        return [*labels, raw["other"]] if raw.get("other") else labels
    return raw


def adapt(inbound: Inbound, settings: SourceSettings | None = None) -> Outcome:
    webhook = _Webhook.model_validate(inbound.body)
    if webhook.event_type != "form_response":
        return Ignored(f"{webhook.event_type} is not a form response")
    response = validate_part(_FormResponse, webhook.form_response, "form_response.")
    if settings is not None:
        require_known_id(settings.ids, [response.form_id], "form_response.form_id")
    answers: dict[str, Any] = {}
    email = phone = None
    names: list[str] = []
    for answer in response.answers:
        key = answer.field.ref or answer.field.id or f"answer_{len(answers)}"
        value = answer_value(answer)
        answers[key] = value
        if answer.type == "email" and email is None and isinstance(value, str):
            email = value
        elif answer.type == "phone_number" and phone is None and isinstance(value, str):
            phone = value
        elif answer.type == "text" and isinstance(value, str) and any(n in key.lower() for n in _NAME_REFS):
            names.append(value.strip())
    lead = LeadCreated(
        name=" ".join(n for n in names if n)[:200] or None,
        phone=phone,
        email=email,
        source=SOURCE,
        source_lead_id=response.token,
        form_id=response.form_id,
        answers=answers,
        extra={"hidden": response.hidden} if response.hidden else {},
    )
    return [build_envelope(event_type="lead_created", payload=lead, tenant=inbound.tenant, source=SOURCE,
                           correlation_id=inbound.correlation_id, source_id=response.token,
                           occurred_at=response.submitted_at)]
