"""The webhooks the bench and the soak send, one builder per source, in one list to extend.

Each `Source` builds the i-th distinct webhook of its kind for a tenant: the stack function
it goes to, the path, the body and headers, and the event type it must become. Adding a
source (issue 3: Z-API, Meta Cloud API, Gupshup, Typeform, Google Ads, Meta leadgen) is one
builder and one entry in SOURCES; bench/tenants.py configures the tenants they are sent for.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.load import Request
from bench.tenants import TENANTS, token
from ops.stack import DEFAULT_EVENTS_API_KEY as EVENTS_API_KEY
from shared.verification import TOKEN_HEADER


@dataclass(frozen=True)
class Webhook:
    function: str
    path: str
    body: dict[str, object]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    name: str
    event_type: str
    table: str  # the data table one distinct event adds exactly one row to
    weight: int
    build: Callable[[int, str], Webhook]  # (serial, tenant) -> the serial-th distinct webhook
    per_tenant: bool = True  # False: the function has no tenant in its URL (the default tenant's)


def _phone(area: int, i: int) -> str:
    """A distinct Brazilian mobile per (area, i): 55 + DDD + 9 + eight digits."""
    return f"55{area}9{i % 100_000_000:08d}"


def evolution_whatsapp(i: int, tenant: str) -> Webhook:
    phone = _phone(11, i)
    return Webhook("whatsapp", f"/{tenant}/evolution", {
        "event": "messages.upsert", "instance": "bench",
        "data": {"key": {"remoteJid": f"{phone}@s.whatsapp.net", "fromMe": False, "id": f"BENCH{i:010d}"},
                 "pushName": f"Cliente {i}", "message": {"conversation": f"Olá, quero um orçamento de piso ({i})"},
                 "messageType": "conversation", "messageTimestamp": 1_760_000_000 + i}},
        {TOKEN_HEADER: token(tenant, "evolution")})


def lead_form(i: int, tenant: str) -> Webhook:
    return Webhook("leads", f"/{tenant}/form", {
        "source": "site", "source_lead_id": f"bench-lead-{i}", "name": f"Lead {i}", "phone": _phone(21, i),
        "email": f"lead{i}@example.com", "funnel": "end_client", "location": "Rio de Janeiro",
        "project_type": "residential", "utm_campaign": "bench"}, {TOKEN_HEADER: token(tenant, "form")})


def crm_stage_change(i: int, tenant: str) -> Webhook:
    return Webhook("events", "/events", {
        "event_type": "stage_changed", "phone": _phone(31, i),
        "payload": {"to_stage": "qualificado", "reason": f"bench {i}"}},
        {"Authorization": f"Bearer {EVENTS_API_KEY}", "Idempotency-Key": f"bench-stage-{i}"})


SOURCES: tuple[Source, ...] = (
    Source("evolution whatsapp", "message_received", "messages", 5, evolution_whatsapp),
    Source("lead form (site)", "lead_created", "leads", 3, lead_form),
    Source("events API (stage_changed)", "stage_changed", "pipeline_moves", 2, crm_stage_change, per_tenant=False),
)


def request_for(webhook: Webhook, function_urls: dict[str, str], label: str) -> Request:
    return Request(function_urls[webhook.function].rstrip("/") + webhook.path,
                   json.dumps(webhook.body).encode(), dict(webhook.headers), label)


@dataclass(frozen=True)
class Planned:
    source: Source
    tenant: str
    serial: int
    duplicate: bool  # an exact resend of an earlier webhook in the plan


def plan(total: int, duplicate_fraction: float, seed: int = 7,
         sources: Sequence[Source] = SOURCES, tenants: Sequence[str] = TENANTS) -> list[Planned]:
    """`total` webhooks: distinct ones by source weight and tenant, plus exact duplicates placed later."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible test mix, not a secret
    duplicates = round(total * duplicate_fraction)
    weights = [s.weight for s in sources]
    serials: dict[str, int] = {}
    order: list[Planned] = []
    for n in range(total - duplicates):
        source = rng.choices(sources, weights)[0]
        serial = serials[source.name] = serials.get(source.name, -1) + 1
        order.append(Planned(source, tenants[n % len(tenants)] if source.per_tenant else "default", serial, False))
    for original in rng.sample(list(order), duplicates):
        at = rng.randint(order.index(original) + 1, len(order))
        order.insert(at, Planned(original.source, original.tenant, original.serial, True))
    return order


def requests_for(planned: Sequence[Planned], function_urls: dict[str, str]) -> list[Request]:
    return [request_for(p.source.build(p.serial, p.tenant), function_urls, p.source.name) for p in planned]
