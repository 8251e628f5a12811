"""Typed payloads, one model per event type; the envelope's `payload` is one of these.

Every model forbids nothing extra at the top level that a writer would silently
drop: unknown form answers go to `extra`, which is kept as JSON on the row.

Phones and e-mails are parsed where they enter (the edge, the console): that is where the
phone and e-mail parsers (phonenumbers, email-validator) are loaded. A payload read back
from an envelope (`E164_CONTEXT`) carries what they already normalised, so a subscriber
reads it without them; only a value in another shape is parsed again.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from shared import storable
from shared.topology import load_topology

# Validation context for values already normalised: a payload read back from an envelope, a phone
# read from the database, a sender id shared.phones already read.
E164_CONTEXT = {"phones": "e164"}
_E164_DIGITS = re.compile(r"[0-9]{7,15}")  # what shared.phones returns, and reads back unchanged
_NORMALISED_EMAIL = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+")  # local@domain, no display name or spaces


def _phone(value: str, info: ValidationInfo) -> str:
    """Any usual writing of a phone, Brazilian by default; E.164 digits as they are when already normalised.

    An envelope carries E.164 digits without '+' (`14155550123`), which read as written by a
    person would be taken for a Brazilian national number. shared.phones returns only digits
    that it reads back as themselves, so digits of that shape are not parsed again.
    """
    if info.context == E164_CONTEXT:
        if _E164_DIGITS.fullmatch(value):
            return value
        if value.isdigit():
            value = "+" + value
    from shared.phones import InvalidPhone, normalize_phone  # the edge's parser; loaded with the edge

    try:
        return normalize_phone(value)
    except InvalidPhone as exc:
        raise ValueError(f"not a phone number: {exc}") from exc


def _email(value: str, info: ValidationInfo) -> str:
    """An e-mail address as pydantic's EmailStr reads it (email-validator, normalised); one already
    normalised (read back from an envelope) is taken as it is."""
    if info.context == E164_CONTEXT and _NORMALISED_EMAIL.fullmatch(value):
        return value
    from shared.emails import normalize_email  # the edge's parser; loaded with the edge

    return normalize_email(value)


Phone = Annotated[str, AfterValidator(_phone)]
Email = Annotated[str, AfterValidator(_email)]

MAX_FREE_FORM_DEPTH = 8
MAX_FREE_FORM_BYTES = 32 * 1024


def _free_form(value: dict[str, Any]) -> dict[str, Any]:
    """Bounded, so what a platform sends beyond the typed fields fits a jsonb column and a log line."""
    storable.check(value, max_depth=MAX_FREE_FORM_DEPTH)
    size = len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8", "replace"))
    if size > MAX_FREE_FORM_BYTES:
        raise ValueError(f"is {size} bytes as JSON; at most {MAX_FREE_FORM_BYTES}")
    return value


# Free-form JSON (form answers, media descriptions, unknown fields): kept whole, within bounds.
FreeForm = Annotated[dict[str, Any], AfterValidator(_free_form)]


def _moment(value: datetime) -> datetime:
    """A time with an offset (none given: UTC); one no timestamp column can hold is refused."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None
    return value


Moment = Annotated[datetime, AfterValidator(_moment)]
Text = Annotated[str, Field(min_length=1, max_length=4000)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
# Platform ids arrive as strings or numbers (Meta, Google Ads); they are kept as strings.
PlatformId = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) and not isinstance(v, bool) else v),
                       Field(min_length=1, max_length=200)]


class Payload(BaseModel):
    # A model's validator is compiled when a function that uses it is loaded (`build_for`), so each
    # function pays for its own event types only (all of them cost ~25 ms); elsewhere, on first use.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


def needs_one_of(*fields: str, message: str) -> Any:
    """A model validator refusing a payload in which every one of `fields` is missing."""
    def check(payload: Payload) -> Payload:
        if all(getattr(payload, name) is None for name in fields):
            raise ValueError(message)
        return payload

    return model_validator(mode="after")(check)


class LeadRef(Payload):
    """A lead named by id or by phone (back-office events may know either)."""

    lead_id: UUID | None = None
    phone: Phone | None = None

    _needs_a_reference = needs_one_of("lead_id", "phone",
                                      message="give lead_id or phone to say which lead this is about")


class LeadCreated(Payload):
    name: ShortText | None = None
    phone: Phone | None = None
    email: Email | None = None
    source: ShortText = "manual"
    source_lead_id: ShortText | None = None
    funnel: ShortText | None = None
    location: ShortText | None = None
    project_type: ShortText | None = None
    form_id: PlatformId | None = None
    campaign_id: PlatformId | None = None
    adset_id: PlatformId | None = None  # Meta ad set, Google Ads ad group
    ad_id: PlatformId | None = None  # Meta ad, Google Ads creative
    is_test: bool | None = None  # a platform's test lead (Google Ads is_test, Meta's testing tool)
    answers: FreeForm | None = None  # every answer, under the form's stable key
    extra: FreeForm = Field(default_factory=dict)

    _reachable = needs_one_of("phone", "email", message="a lead needs a phone or an email")


class MessageReceived(Payload):
    provider: ShortText
    provider_message_id: ShortText
    phone: Phone
    chat_id: ShortText
    display_name: ShortText | None = None
    text: str | None = Field(default=None, max_length=65536)
    message_type: ShortText = "text"
    media: FreeForm | None = None
    direction: Literal["inbound", "outbound"] = "inbound"
    sent_at: Moment | None = None
    raw_type: ShortText | None = None  # the provider's own name for the kind (wrappers included)
    referral: FreeForm | None = None  # the click-to-WhatsApp ad the lead came from
    status_reply: bool | None = None  # a reply to the business's status/story


# A Graph API object id as a URL path segment (`GET /{id}`); anything else could never be fetched.
GRAPH_ID = r"^[0-9A-Za-z_-]{1,64}$"


class LeadgenReceived(Payload):
    """A Meta Lead Ads webhook carries only ids; `leadgen_fetcher` fetches the answers."""

    leadgen_id: Annotated[PlatformId, Field(pattern=GRAPH_ID)]
    page_id: PlatformId
    form_id: PlatformId | None = None
    ad_id: PlatformId | None = None
    adgroup_id: PlatformId | None = None
    created_time: Moment | None = None


class ReplyRequested(Payload):
    """A message the assistant wants sent to a lead; `reply_sender` sends it through the provider."""

    conversation_id: UUID
    lead_id: UUID
    provider: ShortText
    phone: Phone
    chat_id: ShortText
    text: Text
    kind: Literal["answer", "fallback", "handoff", "human"]  # human: a person wrote it in the console
    in_reply_to: ShortText  # event_id of the inbound message answered
    sent_by_user: UUID | None = None  # the console user who wrote a `human` reply


class MessageStatus(Payload):
    """A provider's delivery report on a message the business sent (Evolution messages.update, Cloud API
    statuses, Z-API MessageStatusCallback, Gupshup message-event); it moves the outbound message forward."""

    provider: ShortText
    provider_message_id: ShortText
    status: Literal["sent", "delivered", "read", "failed"]
    reason: Annotated[str, Field(max_length=1000)] | None = None  # the provider's words, for `failed`
    callback_ref: ShortText | None = None  # the outbox's reference, where the provider echoes it
    recipient: Annotated[str, Field(pattern=r"^\d{6,20}$")] | None = None  # the lead's number (digits)
    occurred_at: datetime | None = None


# The default sales funnel, in the users' language.
STAGES = ("novo", "triagem", "qualificado", "proposta", "negociacao", "ganho", "perdido")


def _stage(value: str) -> str:
    if value not in STAGES:
        raise ValueError(f"unknown stage {value!r}; stages are {', '.join(STAGES)}")
    return value


Stage = Annotated[str, AfterValidator(_stage)]


class StageChanged(LeadRef):
    from_stage: Stage | None = None
    to_stage: Stage
    reason: Annotated[str, Field(max_length=2000)] | None = None


class ProposalSent(LeadRef):
    proposal_ref: ShortText
    amount: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "BRL"
    description: Annotated[str, Field(max_length=4000)] | None = None


class Won(LeadRef):
    proposal_ref: ShortText | None = None
    amount: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)] | None = None
    reason: Annotated[str, Field(max_length=2000)] | None = None


class ObraCreated(LeadRef):
    obra_ref: ShortText
    title: ShortText
    proposal_ref: ShortText | None = None
    address: Annotated[str, Field(max_length=500)] | None = None
    area_m2: Annotated[Decimal, Field(gt=0, max_digits=10, decimal_places=2)] | None = None
    start_date: date | None = None
    status: ShortText = "planejada"


class HandoffRequested(Payload):
    """A person takes a conversation over, or hands it back to the assistant (the console)."""

    conversation_id: UUID
    lead_id: UUID
    to: Literal["assistant", "human"]
    actor: ShortText  # who asked (the console user's e-mail)


class NoteAdded(LeadRef):
    """A note a person wrote on a lead (the console)."""

    body: Text
    author: ShortText
    author_id: UUID | None = None


PAYLOAD_MODELS: dict[str, type[Payload]] = {
    "lead_created": LeadCreated,
    "message_received": MessageReceived,
    "stage_changed": StageChanged,
    "proposal_sent": ProposalSent,
    "won": Won,
    "obra_created": ObraCreated,
    "reply_requested": ReplyRequested,
    "leadgen_received": LeadgenReceived,
    "message_status": MessageStatus,
    "handoff_requested": HandoffRequested,
    "note_added": NoteAdded,
}


def build_for(function: str) -> None:
    """Compile now the models of the event types `function` reads or publishes (shared/topology.json),
    with the bases they validate through: at the function's load, not on its first request."""
    topology = load_topology()
    spec = topology.functions[function]
    for event_type in sorted(topology.subscribed_event_types(function) | set(spec.publishes)):
        for model in reversed(PAYLOAD_MODELS[event_type].__mro__):
            if isinstance(model, type) and issubclass(model, Payload) and model is not Payload:
                model.model_rebuild()


def parse_payload(event_type: str, data: Any, context: dict[str, str] | None = None) -> Payload:
    """Validate `data` as the payload of `event_type` (raises pydantic.ValidationError)."""
    try:
        model = PAYLOAD_MODELS[event_type]
    except KeyError:
        raise ValueError(f"unknown event_type {event_type!r}; known: {sorted(PAYLOAD_MODELS)}") from None
    return model.model_validate(data, context=context)
