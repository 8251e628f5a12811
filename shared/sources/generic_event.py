"""Back-office events (`POST /events`): any event type, authenticated by an API key.

The caller names the lead by `lead_id` or `phone` at the top level or inside the
payload; an `Idempotency-Key` header makes a retried call the same event.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.edge import EdgeError, Inbound, Outcome, validation_fields
from shared.envelope import build_envelope
from shared.payloads import PAYLOAD_MODELS, LeadRef, parse_payload
from shared.topology import load_topology


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_type: str
    lead_id: str | None = None
    phone: str | None = None
    source: str = Field(default="crm", min_length=1, max_length=100)
    occurred_at: datetime | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


def authorize(inbound: Inbound) -> None:
    """Require `Authorization: Bearer <EVENTS_API_KEY>`, compared in constant time."""
    expected = inbound.settings.events_api_key
    given = inbound.headers.get("Authorization", "")
    scheme, _, token = given.partition(" ")
    if not expected or scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                                             expected.encode()):
        raise EdgeError(401, "unauthorized", "send Authorization: Bearer <events API key>")


def adapt(inbound: Inbound) -> Outcome:
    authorize(inbound)
    body = _Body.model_validate(inbound.body)
    # Only what the topology lets `events` publish: internal types (reply_requested, say) stay internal.
    allowed = sorted(set(load_topology().functions["events"].publishes) & set(PAYLOAD_MODELS))
    if body.event_type not in allowed:
        raise EdgeError(400, "invalid_request", "unknown event_type",
                        [{"field": "event_type", "message": f"must be one of {allowed}"}])
    data = dict(body.payload)
    if issubclass(PAYLOAD_MODELS[body.event_type], LeadRef):
        for ref in ("lead_id", "phone"):
            if getattr(body, ref) is not None:
                data.setdefault(ref, getattr(body, ref))
    try:
        payload = parse_payload(body.event_type, data)
    except ValidationError as exc:
        raise EdgeError(400, "invalid_request", "the payload has invalid fields",
                        validation_fields(exc, prefix="payload.")) from exc
    return [build_envelope(event_type=body.event_type, payload=payload, tenant=inbound.tenant,
                           source=body.source, correlation_id=inbound.correlation_id,
                           source_id=inbound.headers.get("Idempotency-Key"), occurred_at=body.occurred_at)]
