"""The versioned envelope every event travels in, and its Pub/Sub form.

The fields operators filter on also ride as message attributes, so a dead-lettered
message can be read without decoding its body.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared import storable
from shared.payloads import E164_CONTEXT, Payload, parse_payload

SCHEMA_VERSION = 1
# Fixed namespace: the same source id always yields the same event_id, on any instance.
EVENT_ID_NAMESPACE = uuid.UUID("6f1d2c3e-8a4b-4c5d-9e6f-7a8b9c0d1e2f")
# How far in the future a caller's or a platform's clock may run ahead of ours.
CLOCK_SKEW = timedelta(minutes=5)
ATTRIBUTE_FIELDS = ("event_type", "event_id", "correlation_id", "tenant", "source", "schema_version")


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str
    event_type: str
    schema_version: int = SCHEMA_VERSION
    correlation_id: str
    tenant: str
    source: str
    occurred_at: datetime
    received_at: datetime
    payload: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _storable(self) -> Envelope:
        """Only what Postgres can hold: an envelope that could not be written is never made (nor published)."""
        for name in ("event_id", "event_type", "correlation_id", "tenant", "source"):
            storable.check(getattr(self, name), name)
        storable.check(self.payload, "payload")
        return self

    def typed_payload(self) -> Payload:
        return parse_payload(self.event_type, self.payload, context=E164_CONTEXT)

    def attributes(self) -> dict[str, str]:
        return {name: str(getattr(self, name)) for name in ATTRIBUTE_FIELDS}

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        """An envelope from its message body; one published before the edge normalised strings (a NUL,
        a lone surrogate) is normalised the same way, so a backlog or a redrive of it can be written."""
        envelope = cls.model_validate(storable.loads(data))
        if envelope.schema_version > SCHEMA_VERSION:
            raise ValueError(f"envelope schema_version {envelope.schema_version} is newer than {SCHEMA_VERSION}")
        return envelope


def event_id_for(tenant: str, source: str, event_type: str, source_id: str | None) -> str:
    """Deterministic when the source gives an id (a retried webhook is the same event)."""
    if not source_id:
        return str(uuid.uuid4())
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{tenant}|{source}|{event_type}|{source_id}"))


def build_envelope(*, event_type: str, payload: Payload, tenant: str, source: str, correlation_id: str,
                   source_id: str | None = None, occurred_at: datetime | None = None) -> Envelope:
    now = datetime.now(UTC)
    return Envelope(
        event_id=event_id_for(tenant, source, event_type, source_id),
        event_type=event_type,
        correlation_id=correlation_id,
        tenant=tenant,
        source=source,
        occurred_at=bounded_occurred_at(occurred_at, now),
        received_at=now,
        payload=payload.model_dump(mode="json", exclude_none=True),
    )


def bounded_occurred_at(occurred_at: datetime | None, received_at: datetime) -> datetime:
    """When it happened, as far as we can believe it: never past received_at + CLOCK_SKEW.

    A platform's time beyond that (or one no timestamp column can hold) becomes received_at:
    the webhook is real and must not be lost, but a time in the future would make every later
    stage move look stale. Callers that can be told (the events API) get a 400 instead.
    A time without an offset is taken as UTC.
    """
    if occurred_at is None:
        return received_at
    if occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=UTC)
    try:
        occurred_at.astimezone(UTC)  # its offset is kept; this only proves a timestamp column can hold it
    except OverflowError:
        return received_at
    return received_at if occurred_at > received_at + CLOCK_SKEW else occurred_at
