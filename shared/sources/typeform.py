"""Typeform `form_response` webhooks to `lead_created` envelopes.

Every answer is kept under its field's `ref` (stable across form edits, unlike the
question text), its value read by the answer's `type`. The e-mail and phone answers
become the lead's contact. The name is found, in order: by the tenant's `field_map`
(ref -> name/first_name/last_name/email/phone), else by a text answer whose ref or
title names a name (`name`, `nome`, "Seu nome", "First name", "Sobrenome"...). Refs
are often generated ids, so the title from `definition.fields` counts as much as the
ref; a `contact_info` block's first/last name sub-fields are found by their titles.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.envelope import build_envelope
from shared.inbound import Ignored, Inbound, Outcome
from shared.payloads import LeadCreated
from shared.sources.messages import validate_part
from shared.tenants import SourceSettings
from shared.verification import require_known_id

SOURCE = "typeform"
_FIRST = ("first name", "first_name", "firstname", "primeiro nome", "nome próprio")
_LAST = ("last name", "last_name", "lastname", "sobrenome", "surname", "último nome")
_NAME = ("name", "nome")
_NOT_NAME = ("company", "empresa", "username", "usuário", "nome da empresa", "nome do produto")


class _Field(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    ref: str | None = None
    type: str | None = None
    title: str | None = None


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
    definition: dict[str, Any] = Field(default_factory=dict)


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


def name_role(label: str) -> str | None:
    """`first_name`, `last_name` or `name` when a field's ref or title names a person's name."""
    words = re.findall(r"[^\W\d_]+", label.lower())
    text = " ".join(words)
    if any(n in text for n in _NOT_NAME):
        return None
    if any(n.replace("_", " ") in text for n in _FIRST):
        return "first_name"
    if any(n.replace("_", " ") in text for n in _LAST):
        return "last_name"
    return "name" if any(n in words for n in _NAME) else None


def _titles(response: _FormResponse) -> dict[str, str]:
    """Field id -> title from the form definition, nested fields included (a `contact_info`
    block's first name, last name, phone and e-mail; question groups)."""
    titles: dict[str, str] = {}
    pending: list[Any] = list(response.definition.get("fields") or [])
    while pending and len(titles) < 1000:  # bounded: a definition is data from outside
        field = pending.pop()
        if not isinstance(field, dict):
            continue
        if field.get("id"):
            titles[str(field["id"])] = str(field.get("title") or "")
        properties = field.get("properties")
        if isinstance(properties, dict) and isinstance(properties.get("fields"), list):
            pending.extend(properties["fields"])
    return titles


def adapt(inbound: Inbound, settings: SourceSettings | None = None) -> Outcome:
    webhook = _Webhook.model_validate(inbound.body)
    if webhook.event_type != "form_response":
        return Ignored(f"{webhook.event_type} is not a form response")
    response = validate_part(_FormResponse, webhook.form_response, "form_response.")
    require_known_id(settings, [response.form_id], "form_response.form_id")
    field_map = settings.field_map if settings is not None else {}
    titles = _titles(response)
    answers: dict[str, Any] = {}
    found: dict[str, list[str]] = {"name": [], "first_name": [], "last_name": [], "email": [], "phone": []}
    for answer in response.answers:
        key = answer.field.ref or answer.field.id or f"answer_{len(answers)}"
        value = answer_value(answer)
        answers[key] = value
        title = answer.field.title or titles.get(str(answer.field.id), "")
        role: str | None = field_map.get(key) or field_map.get(str(answer.field.id))
        if role is None and answer.type == "email":
            role = "email"
        elif role is None and answer.type == "phone_number":
            role = "phone"
        elif role is None and answer.type == "text":
            role = name_role(key) or name_role(title)
        if role is not None and isinstance(value, str) and value.strip():
            found[role].append(value.strip())
    full = found["name"] or [" ".join(found["first_name"][:1] + found["last_name"][:1])]
    lead = LeadCreated(
        name=" ".join(n for n in full if n)[:200] or None,
        phone=next(iter(found["phone"]), None),
        email=next(iter(found["email"]), None),
        source=SOURCE,
        source_lead_id=response.token,
        form_id=response.form_id,
        answers=answers,
        extra={"hidden": response.hidden} if response.hidden else {},
    )
    return [build_envelope(event_type="lead_created", payload=lead, tenant=inbound.tenant, source=SOURCE,
                           correlation_id=inbound.correlation_id, source_id=response.token,
                           occurred_at=response.submitted_at)]
