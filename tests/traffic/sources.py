"""The webhooks the bench and the soak send, one builder per source, in one list to extend.

Each `Source` builds the i-th distinct webhook of its kind for a tenant: the stack function
it goes to, the path, the body and headers (signed over the exact bytes sent, where the
platform signs), and the event type it must become. Every verified source is in SOURCES:
Evolution, Z-API, Meta Cloud API, 360dialog and Gupshup (WhatsApp), the site form, Typeform, Google
Ads and Meta Lead Ads (leads), and the events API; tests/traffic/tenants.py configures the tenants
they are sent for. Each source has its own phone range (`_phone(area, i)`, one area code per
source) and e-mails, so every distinct webhook is one new lead and no two sources share one.

Meta Lead Ads webhooks carry only ids: `graph_lead` gives what the Graph API answers for each
(the soak registers them with its Graph stand-in), and leadgen_fetcher writes that lead.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.verification import TOKEN_HEADER
from tests.traffic.load import Request
from tests.traffic.tenants import (
    TENANTS,
    google_form,
    gupshup_app,
    hub_signature,
    meta_page_id,
    meta_phone_number_id,
    secret,
    token,
    typeform_form,
    typeform_signature,
    zapi_instance,
)

EPOCH = 1_760_000_000  # the i-th webhook of a source happened EPOCH + i seconds


def encode(body: dict[str, object]) -> bytes:
    """The bytes a webhook's body is sent as (what a signature is computed over)."""
    return json.dumps(body).encode()


@dataclass(frozen=True)
class Webhook:
    function: str
    path: str
    body: dict[str, object]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def raw(self) -> bytes:
        return encode(self.body)


@dataclass(frozen=True)
class Source:
    name: str
    event_type: str
    table: str  # the data table one distinct event adds exactly one row to
    weight: int
    build: Callable[[int, str], Webhook]  # (serial, tenant) -> the serial-th distinct webhook
    lead_source: str  # `leads.source` of the lead each distinct webhook adds
    per_tenant: bool = True  # False: the function has no tenant in its URL (the default tenant's)
    # Meta Lead Ads: serial -> (lead id, what the Graph API answers for it); leadgen_fetcher fetches it.
    graph_lead: Callable[[int], tuple[str, dict[str, object]]] | None = None


def _phone(area: int, i: int) -> str:
    """A distinct Brazilian mobile per (area, i): 55 + DDD + 9 + eight digits."""
    return f"55{area}9{i % 100_000_000:08d}"


def _iso(i: int) -> str:
    return datetime.fromtimestamp(EPOCH + i, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def evolution_whatsapp(i: int, tenant: str) -> Webhook:
    phone = _phone(11, i)
    return Webhook("whatsapp", f"/{tenant}/evolution", {
        "event": "messages.upsert", "instance": "bench",
        "data": {"key": {"remoteJid": f"{phone}@s.whatsapp.net", "fromMe": False, "id": f"BENCH{i:010d}"},
                 "pushName": f"Cliente {i}", "message": {"conversation": f"Olá, quero um orçamento de piso ({i})"},
                 "messageType": "conversation", "messageTimestamp": EPOCH + i}},
        {TOKEN_HEADER: token(tenant, "evolution")})


def zapi_whatsapp(i: int, tenant: str) -> Webhook:
    phone = _phone(41, i)
    return Webhook("whatsapp", f"/{tenant}/zapi?token={token(tenant, 'zapi')}", {
        "type": "ReceivedCallback", "instanceId": zapi_instance(tenant),
        "messageId": f"BENCHZ{i:010d}", "phone": phone, "fromMe": False, "momment": (EPOCH + i) * 1000,
        "status": "RECEIVED", "chatName": f"Cliente Z {i}", "senderName": f"Cliente Z {i}", "isGroup": False,
        "isNewsletter": False, "broadcast": False, "isStatusReply": False,
        "text": {"message": f"Vocês atendem em Curitiba? ({i})"}})  # Z-API sets no headers: the token is in the URL


def _cloud_api(i: int, phone: str, phone_number_id: str, message_id: str, name: str) -> dict[str, object]:
    """A WhatsApp Cloud API webhook with one text message (Meta's shape; 360dialog forwards it)."""
    return {"object": "whatsapp_business_account", "entry": [{
        "id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "551140028922", "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": name}, "wa_id": phone}],
            "messages": [{"from": phone, "id": message_id, "timestamp": str(EPOCH + i), "type": "text",
                          "text": {"body": f"Quanto custa o m² do porcelanato? ({i})"}}]}}]}]}


def meta_whatsapp(i: int, tenant: str) -> Webhook:
    body = _cloud_api(i, _phone(51, i), meta_phone_number_id(tenant), f"wamid.BENCH{i:012d}", f"Cliente M {i}")
    return Webhook("whatsapp", f"/{tenant}/meta", body, {"X-Hub-Signature-256": hub_signature(tenant, encode(body))})


def dialog360_whatsapp(i: int, tenant: str) -> Webhook:
    body = _cloud_api(i, _phone(91, i), "100000000000360", f"wamid.BENCH360D{i:012d}", f"Cliente D {i}")
    return Webhook("whatsapp", f"/{tenant}/360dialog", body, {TOKEN_HEADER: token(tenant, "360dialog")})


def gupshup_whatsapp(i: int, tenant: str) -> Webhook:
    phone = _phone(61, i)
    return Webhook("whatsapp", f"/{tenant}/gupshup?token={token(tenant, 'gupshup')}", {
        "app": gupshup_app(tenant), "timestamp": (EPOCH + i) * 1000, "version": 2, "type": "message",
        "payload": {"id": f"bench-gs-{i:010d}", "source": phone, "type": "text",
                    "payload": {"text": f"Boa tarde, vocês fazem instalação? ({i})"},
                    "sender": {"phone": phone, "name": f"Cliente G {i}", "country_code": "55",
                               "dial_code": phone[2:]}}})


def lead_form(i: int, tenant: str) -> Webhook:
    return Webhook("leads", f"/{tenant}/form", {
        "source": "site", "source_lead_id": f"bench-lead-{i}", "name": f"Lead {i}", "phone": _phone(21, i),
        "email": f"lead{i}@example.com", "funnel": "end_client", "location": "Rio de Janeiro",
        "project_type": "residential", "utm_campaign": "bench"}, {TOKEN_HEADER: token(tenant, "form")})


def typeform_lead(i: int, tenant: str) -> Webhook:
    def answer(kind: str, ref: str, value: object) -> dict[str, object]:
        return {"type": kind, kind: value, "field": {"id": f"f-{ref}", "ref": ref}}

    body: dict[str, object] = {"event_id": f"bench-tf-{i:010d}", "event_type": "form_response", "form_response": {
        "form_id": typeform_form(tenant), "token": f"benchtf{i:010d}", "submitted_at": _iso(i),
        "hidden": {"utm_campaign": "bench"}, "answers": [
            answer("text", "nome", f"Typeform {i}"), answer("email", "email", f"typeform{i}@example.com"),
            answer("phone_number", "whatsapp", "+" + _phone(71, i)),
            answer("choice", "ambiente", {"id": "ch1", "label": "Sala"}), answer("number", "area_m2", 40 + i % 60)]}}
    return Webhook("leads", f"/{tenant}/typeform", body,
                   {"Typeform-Signature": typeform_signature(tenant, encode(body))})


def google_ads_lead(i: int, tenant: str) -> Webhook:
    def column(column_id: str, name: str, value: str) -> dict[str, str]:
        return {"column_id": column_id, "column_name": name, "string_value": value}

    phone = _phone(81, i)
    return Webhook("leads", f"/{tenant}/google_ads", {
        "lead_id": f"bench-gads-{i:010d}", "api_version": "1.0", "form_id": google_form(tenant),
        "campaign_id": 20000000002, "adgroup_id": 30000000003, "creative_id": 50000000004,
        "google_key": secret(tenant, "google-key"), "is_test": False, "gcl_id": f"bench-gclid-{i}",
        "lead_submit_time": _iso(i), "user_column_data": [
            column("FULL_NAME", "Full Name", f"Google {i}"),
            column("PHONE_NUMBER", "User Phone", f"+55 {phone[2:4]} {phone[4:9]}-{phone[9:]}"),
            column("EMAIL", "User Email", f"google{i}@example.com"), column("CITY", "Cidade", "Recife")]})


def _leadgen_id(i: int) -> str:
    return f"77{i:014d}"


def meta_leadgen(i: int, tenant: str) -> Webhook:
    page = meta_page_id(tenant)
    body: dict[str, object] = {"object": "page", "entry": [{"id": page, "time": EPOCH + i, "changes": [{
        "field": "leadgen", "value": {"leadgen_id": _leadgen_id(i), "page_id": page, "form_id": "987654321098765",
                                      "ad_id": "120210000000000001", "adgroup_id": "120210000000000002",
                                      "created_time": EPOCH + i}}]}]}
    return Webhook("leads", f"/{tenant}/meta", body,
                   {"X-Hub-Signature-256": hub_signature(tenant, encode(body))})


def meta_graph_lead(i: int) -> tuple[str, dict[str, object]]:
    """The Graph API's answer for the i-th Meta Lead Ads webhook's lead."""
    lead_id = _leadgen_id(i)
    return lead_id, {
        "id": lead_id, "created_time": datetime.fromtimestamp(EPOCH + i, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "ad_id": "120210000000000001", "adset_id": "120210000000000002", "campaign_id": "120210000000000003",
        "form_id": "987654321098765", "is_organic": False, "platform": "ig", "field_data": [
            {"name": "full_name", "values": [f"Meta Lead {i}"]},
            {"name": "email", "values": [f"metalead{i}@example.com"]},
            {"name": "phone_number", "values": ["+" + _phone(85, i)]},
            {"name": "materiais_de_interesse", "values": ["porcelanato", "vinilico"]}]}


def crm_stage_change(i: int, tenant: str) -> Webhook:
    return Webhook("events", f"/{tenant}/events", {
        "event_type": "stage_changed", "phone": _phone(31, i),
        "payload": {"to_stage": "qualificado", "reason": f"bench {i}"}},
        {"Authorization": f"Bearer {secret(tenant, 'events-api-key')}",
         "Idempotency-Key": f"bench-stage-{i}"})


# WhatsApp messages dominate (~2/3), then leads from forms and ads, then CRM events. The first source
# of an event type is the one bench/edge.py measures for it.
SOURCES: tuple[Source, ...] = (
    Source("evolution whatsapp", "message_received", "messages", 18, evolution_whatsapp, "evolution"),
    Source("z-api whatsapp", "message_received", "messages", 12, zapi_whatsapp, "zapi"),
    Source("meta cloud api whatsapp", "message_received", "messages", 14, meta_whatsapp, "meta"),
    Source("360dialog whatsapp", "message_received", "messages", 4, dialog360_whatsapp, "360dialog"),
    Source("gupshup whatsapp", "message_received", "messages", 6, gupshup_whatsapp, "gupshup"),
    Source("lead form (site)", "lead_created", "leads", 8, lead_form, "site"),
    Source("typeform", "lead_created", "leads", 3, typeform_lead, "typeform"),
    Source("google ads lead form", "lead_created", "leads", 3, google_ads_lead, "google_ads"),
    Source("meta lead ads", "leadgen_received", "leads", 4, meta_leadgen, "meta_leadgen", graph_lead=meta_graph_lead),
    Source("events API (stage_changed)", "stage_changed", "pipeline_moves", 6, crm_stage_change, "crm"),
)


def request_for(webhook: Webhook, function_urls: dict[str, str], label: str) -> Request:
    return Request(function_urls[webhook.function].rstrip("/") + webhook.path,
                   webhook.raw, dict(webhook.headers), label)


@dataclass(frozen=True)
class Planned:
    source: Source
    tenant: str
    serial: int
    duplicate: bool  # an exact resend of an earlier webhook in the plan


def plan(total: int, duplicate_fraction: float, seed: int = 7,
         sources: Sequence[Source] = SOURCES, tenants: Sequence[str] = TENANTS) -> list[Planned]:
    """`total` webhooks: distinct ones by source weight and tenant, plus exact duplicates placed later."""
    rng = random.Random(seed)
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
