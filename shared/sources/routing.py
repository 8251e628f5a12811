"""From a request path to a Route: which tenant, which source, and the proof it needs.

URLs carry the tenant: `/<tenant>/<source>`, optionally after `/webhook/whatsapp` or
`/webhook/lead(s)`. A bare path (`/`, `/webhook/lead`, `/webhook/whatsapp`) is the
default tenant's first source (generic form, Evolution), so the original URLs keep
working; whether they need proof is the default tenant's configuration. An unknown
tenant, or a source the tenant has not turned on, is 404.

A channel's parsers are imported when its router is made (with its function), and only
its own: the whatsapp function does not load the lead sources, nor leads the WhatsApp ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from shared.inbound import EdgeError, Inbound, Outcome, RawRequest, Reply, Route, Router
from shared.tenants import TENANT_ID, SourceSettings, TenantDirectory, TenantsUnavailable, get_directory
from shared.verification import (
    require_google_key,
    require_hub_signature,
    require_jwt,
    require_token,
    require_typeform_signature,
)

SourceAdapter = Callable[[Inbound, SourceSettings | None], Outcome]
Proof = Callable[[SourceSettings, RawRequest, bytes], None]


def _token(settings: SourceSettings, request: RawRequest, raw: bytes) -> None:
    if settings.secret:
        require_token(settings.secret, request)
    if settings.jwt_secret:
        require_jwt(settings.jwt_secret, request)


def _hub(settings: SourceSettings, request: RawRequest, raw: bytes) -> None:
    assert settings.secret  # tenants.source_problem refuses a signed source without one
    require_hub_signature(settings.secret, request, raw)


def _typeform(settings: SourceSettings, request: RawRequest, raw: bytes) -> None:
    assert settings.secret
    require_typeform_signature(settings.secret, request, raw)


def _google(settings: SourceSettings, request: RawRequest, raw: bytes) -> None:
    assert settings.secret
    require_google_key(settings.secret, raw)


@dataclass(frozen=True)
class SourceSpec:
    adapt: SourceAdapter
    proof: Proof
    handshake: Callable[[Inbound, SourceSettings | None], Reply] | None = None


def _whatsapp() -> dict[str, SourceSpec]:
    from shared.sources import evolution, gupshup, meta_cloud, meta_hub, zapi

    return {
        "evolution": SourceSpec(evolution.adapt, _token),
        "zapi": SourceSpec(zapi.adapt, _token),
        "meta": SourceSpec(meta_cloud.adapter("meta"), _hub, meta_hub.handshake),
        "360dialog": SourceSpec(meta_cloud.adapter("360dialog"), _token),
        "gupshup": SourceSpec(gupshup.adapt, _token),
    }


def _leads() -> dict[str, SourceSpec]:
    from shared import emails, phones  # noqa: F401 - a lead's phone and e-mail are parsed on every request
    from shared.sources import google_ads, lead_form, meta_hub, meta_leadgen, typeform

    return {
        "form": SourceSpec(lead_form.adapt, _token),
        "meta": SourceSpec(meta_leadgen.adapt, _hub, meta_hub.handshake),
        "typeform": SourceSpec(typeform.adapt, _typeform),
        "google_ads": SourceSpec(google_ads.adapt, _google),
    }


CHANNELS: dict[str, Callable[[], dict[str, SourceSpec]]] = {"whatsapp": _whatsapp, "leads": _leads}


@cache
def sources(channel: str) -> dict[str, SourceSpec]:
    """The channel's sources by name, their parsers imported on first use."""
    return CHANNELS[channel]()


DEFAULT_SOURCE = {"whatsapp": "evolution", "leads": "form"}
PREFIXES: dict[str, tuple[tuple[str, ...], ...]] = {
    "whatsapp": (("webhook", "whatsapp"),),
    "leads": (("webhook", "leads"), ("webhook", "lead")),
}
# Evolution's `webhook_by_events` appends the event name to the URL (`.../messages-upsert`).
_TRAILING_EVENT = {("whatsapp", "evolution")}


def _not_found(message: str) -> EdgeError:
    return EdgeError(404, "not_found", message)


def split_path(channel: str, path: str, default_tenant: str) -> tuple[str, str]:
    """(tenant, source) named by the path; a 404 for a path that names neither properly."""
    segments = [s for s in path.split("/") if s]
    for prefix in PREFIXES[channel]:
        if tuple(segments[: len(prefix)]) == prefix:
            segments = segments[len(prefix):]
            break
    if not segments:
        return default_tenant, DEFAULT_SOURCE[channel]
    if len(segments) == 2 or (len(segments) == 3 and tuple([channel, segments[1]]) in _TRAILING_EVENT):
        return segments[0], segments[1]
    raise _not_found(f"use /<tenant>/<source>; sources here: {', '.join(sources(channel))}")


def resolve(channel: str, request: RawRequest, directory: TenantDirectory, default_tenant: str) -> Route:
    tenant_id, source = split_path(channel, request.path, default_tenant)
    specs = sources(channel)
    if not re.match(TENANT_ID, tenant_id) or source not in specs:
        raise _not_found(f"no such tenant or source ({channel} sources: {', '.join(specs)})")
    try:
        tenant = directory.get(tenant_id)
    except TenantsUnavailable as exc:
        raise EdgeError(503, "not_configured", "tenant configuration unavailable; retry later") from exc
    settings = tenant.source(channel, source) if tenant is not None else None
    if tenant is None or settings is None:
        raise _not_found("no such tenant, or the tenant does not take this source")
    spec = specs[source]
    return Route(
        tenant=tenant_id,
        source=source,
        adapter=_adapter(spec, settings),
        verify=_verifier(spec, settings, tenant.require_proof),
        methods=("GET", "POST") if spec.handshake else ("POST",),
    )


def _adapter(spec: SourceSpec, settings: SourceSettings) -> Callable[[Inbound], Outcome]:
    def adapt(inbound: Inbound) -> Outcome:
        if inbound.body is None and spec.handshake is not None:  # a GET: the subscription handshake
            return spec.handshake(inbound, settings)
        return spec.adapt(inbound, settings)

    return adapt


def _verifier(spec: SourceSpec, settings: SourceSettings,
              require_proof: bool) -> Callable[[RawRequest, bytes], None] | None:
    if settings.secret or settings.jwt_secret:
        return lambda request, raw: spec.proof(settings, request, raw)
    if require_proof:  # tenants.source_problem refuses this configuration; never open by mistake
        def refuse(request: RawRequest, raw: bytes) -> None:
            raise EdgeError(401, "unauthorized", "this source has no proof configured")
        return refuse
    return None


def router(channel: str, directory: Callable[[], TenantDirectory] = get_directory) -> Router:
    """The Router for one HTTP function (`whatsapp` or `leads`)."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    sources(channel)  # its parsers load with the function that routes to them

    def route(request: RawRequest) -> Route:
        from shared.config import get_settings

        return resolve(channel, request, directory(), get_settings().default_tenant)

    return route

