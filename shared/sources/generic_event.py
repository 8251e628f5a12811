"""Back-office events (`POST /<tenant>/events`): any event type, behind the tenant's own API key.

The tenant is in the URL, like every other function's; its key is the secret its
`events/api` source names in the tenants document (`ctower tenants set-source <t>
events/api --secret NAME`), so a key opens one tenant's door and no other. The
tenant-less URL (`/`, `/events`) is the default tenant's only, with the instance's
EVENTS_API_KEY (what Terraform mounts) or the default tenant's own `events/api` secret.
The key is checked before the body is even parsed.

The caller names the lead by `lead_id` or `phone` at the top level or inside the
payload; an `Idempotency-Key` header makes a retried call the same event. A caller's
`occurred_at` more than the clock-skew allowance (`envelope.CLOCK_SKEW`) in the future
is refused with a 400: the integrator's clock or data is wrong, and a silent clamp would
record a time they never sent (platform webhooks, which cannot be told, are clamped instead).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import emails, phones  # noqa: F401 - phones and e-mails in events are parsed on every request
from shared.config import Settings, get_settings
from shared.envelope import CLOCK_SKEW, build_envelope
from shared.inbound import EdgeError, Inbound, Outcome, RawRequest, Route, Router, validation_fields
from shared.payloads import PAYLOAD_MODELS, LeadRef, Moment, parse_payload
from shared.tenants import TENANT_ID, TenantDirectory, TenantsUnavailable, get_directory
from shared.topology import load_topology
from shared.verification import unauthorized, with_secret

CHANNEL, SOURCE = "events", "api"
_LEGACY_PATHS = ((), ("events",), ("webhook", "events"))


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_type: str
    lead_id: str | None = None
    phone: str | None = None
    source: str = Field(default="crm", min_length=1, max_length=100)
    occurred_at: Moment | None = None
    payload: dict[str, Any] = Field(default_factory=dict)


def _bearer(request: RawRequest) -> bytes | None:
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    token = token.strip()
    return token.encode("utf-8", "replace") if scheme.lower() == "bearer" and token else None


def _refused() -> EdgeError:
    return unauthorized("send Authorization: Bearer <this tenant's events API key>")


def instance_key_check(settings: Settings) -> Callable[[RawRequest, bytes], None]:
    """The default tenant's tenant-less door: the instance's EVENTS_API_KEY, in constant time."""
    def verify(request: RawRequest, raw: bytes) -> None:
        given, expected = _bearer(request), settings.events_api_key
        if given is None or not expected or not hmac.compare_digest(given, expected.encode("utf-8")):
            raise _refused()
    return verify


def secret_key_check(secret_name: str, fallback: Callable[[RawRequest, bytes], None] | None = None
                     ) -> Callable[[RawRequest, bytes], None]:
    """A tenant's door: the value of the secret its `events/api` source names (re-read once on a miss)."""
    def verify(request: RawRequest, raw: bytes) -> None:
        given = _bearer(request)
        if given is None:
            raise _refused()
        if with_secret(secret_name, lambda key: hmac.compare_digest(key, given)):
            return
        if fallback is None:
            raise _refused()
        fallback(request, raw)
    return verify


def split_path(path: str) -> str | None:
    """The tenant a path names (`/<tenant>/events`, `/webhook/events/<tenant>`), or None for the legacy URL."""
    segments = tuple(s for s in path.split("/") if s)
    if segments in _LEGACY_PATHS:
        return None
    if segments[:2] == ("webhook", "events") and len(segments) == 3:
        return segments[2]
    if len(segments) == 2 and segments[1] == "events":
        return segments[0]
    raise EdgeError(404, "not_found", "use /<tenant>/events")


def resolve(request: RawRequest, directory: TenantDirectory, settings: Settings) -> Route:
    tenant_id = split_path(request.path)
    legacy = tenant_id is None
    tenant_id = tenant_id or settings.default_tenant
    if not re.match(TENANT_ID, tenant_id):
        raise EdgeError(404, "not_found", "no such tenant")
    try:
        tenant = directory.get(tenant_id)
    except TenantsUnavailable as exc:
        if not legacy:
            raise EdgeError(503, "not_configured", "tenant configuration unavailable; retry later") from exc
        tenant = None  # the tenant-less door needs no document: the instance key opens it
    configured = tenant.source(CHANNEL, SOURCE) if tenant is not None else None
    secret = configured.secret if configured is not None else None
    instance_key = instance_key_check(settings) if tenant_id == settings.default_tenant else None
    if secret:
        verify = secret_key_check(secret, fallback=instance_key)
    elif instance_key is not None:
        verify = instance_key
    else:
        raise EdgeError(404, "not_found", "no such tenant, or the tenant does not take back-office events")
    return Route(tenant=tenant_id, source=CHANNEL, adapter=adapt, verify=verify)


def router(directory: Callable[[], TenantDirectory] = get_directory,
           settings: Callable[[], Settings] = get_settings) -> Router:
    """The `events` function's Router: tenant from the path, its key checked on the raw request."""
    return lambda request: resolve(request, directory(), settings())


def adapt(inbound: Inbound) -> Outcome:
    """The body of an authorised request (the route's verify ran before it was parsed)."""
    body = _Body.model_validate(inbound.body)
    # Only what the topology lets `events` publish: internal types (reply_requested, say) stay internal.
    allowed = sorted(set(load_topology().functions["events"].publishes) & set(PAYLOAD_MODELS))
    if body.event_type not in allowed:
        raise EdgeError(400, "invalid_request", "unknown event_type",
                        [{"field": "event_type", "message": f"must be one of {allowed}"}])
    if body.occurred_at is not None and body.occurred_at > datetime.now(UTC) + CLOCK_SKEW:
        raise EdgeError(400, "invalid_request", "occurred_at is in the future", [{
            "field": "occurred_at", "message": f"is more than {int(CLOCK_SKEW.total_seconds())} s ahead of our "
                                              "clock; send when it happened (ISO 8601 with offset)"}])
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
