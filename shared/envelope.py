"""The versioned envelope every event travels in, and its Pub/Sub form.

The fields operators filter on also ride as message attributes, so a dead-lettered
message can be read without decoding its body.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared import storable
from shared.payloads import E164_CONTEXT, Payload, parse_payload

SCHEMA_VERSION = 1
# Fixed namespace: the same source id always yields the same event_id, on any instance.
EVENT_ID_NAMESPACE = uuid.UUID("6f1d2c3e-8a4b-4c5d-9e6f-7a8b9c0d1e2f")
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
        envelope = cls.model_validate(json.loads(data))
        if envelope.schema_version > SCHEMA_VERSION:
            raise ValueError(f"envelope schema_version {envelope.schema_version} is newer than {SCHEMA_VERSION}")
        return envelope


def event_id_for(tenant: str, source: str, event_type: str, source_id: str | None) -> str:
    """Deterministic when the source gives an id (a retried webhook is the same event)."""
    if not source_id:
        return str(uuid.uuid4())
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{tenant}|{source}|{event_type}|{source_id}"))


def build_envelope(
    *,
    event_type: str,
    payload: Payload,
    tenant: str,
    source: str,
    correlation_id: str,
    source_id: str | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    now = datetime.now(UTC)
    return Envelope(
        event_id=event_id_for(tenant, source, event_type, source_id),
        event_type=event_type,
        correlation_id=correlation_id,
        tenant=tenant,
        source=source,
        occurred_at=occurred_at or now,
        received_at=now,
        payload=payload.model_dump(mode="json", exclude_none=True),
    )
