"""A lead from a site form or manual entry to a `lead_created` envelope.

Known fields are typed; every other field the form sent is kept under `extra`.
"""

from __future__ import annotations

from typing import Any

from shared.envelope import build_envelope
from shared.inbound import EdgeError, Inbound, Outcome
from shared.payloads import LeadCreated
from shared.tenants import SourceSettings

_KNOWN = set(LeadCreated.model_fields) - {"extra"}


def adapt(inbound: Inbound, settings: SourceSettings | None = None) -> Outcome:
    del settings  # a site form has no platform id to check; its proof is the token
    if not isinstance(inbound.body, dict):
        raise EdgeError(400, "invalid_request", "the body must be a JSON object",
                        [{"field": "body", "message": "expected an object"}])
    body: dict[str, Any] = dict(inbound.body)
    extra = {k: v for k, v in body.items() if k not in _KNOWN}
    if isinstance(body.get("extra"), dict):
        extra = {**body["extra"], **{k: v for k, v in extra.items() if k != "extra"}}
    payload = LeadCreated.model_validate({**{k: v for k, v in body.items() if k in _KNOWN}, "extra": extra})
    source_id = payload.source_lead_id or inbound.headers.get("Idempotency-Key")
    return [build_envelope(event_type="lead_created", payload=payload, tenant=inbound.tenant,
                           source=payload.source, correlation_id=inbound.correlation_id, source_id=source_id)]
