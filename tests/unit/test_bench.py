"""The bench's own arithmetic and webhook mix (no stack: the mix goes through the edge in-process)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from ops.stack import DEFAULT_EVENTS_API_KEY
from shared.edge import Response, handle
from shared.envelope import Envelope
from shared.meta_leads import lead_from_graph
from shared.payloads import LeadgenReceived
from shared.secrets import SecretStore, reset_store
from shared.sources import generic_event
from shared.sources.routing import router
from shared.tenants import CHANNELS, TenantDirectory
from tests.fakes import RecordingPublisher
from tests.traffic import tenants as bench_tenants
from tests.traffic.sources import SOURCES, Source, Webhook, plan
from tests.traffic.stats import percentile, ratio
from tests.unit.edge_helpers import request, settings


def test_percentile_is_nearest_rank() -> None:
    samples = [float(n) for n in range(1, 101)]
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 99) == 99.0
    assert percentile(samples, 100) == 100.0
    assert percentile([], 50) == 0.0
    assert ratio(3.0, 0.0) == 0.0 and ratio(3.0, 2.0) == 1.5


def test_the_soak_plan_has_exact_resends_placed_after_their_original() -> None:
    planned = plan(1000, 0.10, seed=3)
    assert len(planned) == 1000
    resends = [p for p in planned if p.duplicate]
    assert len(resends) == 100
    first_seen: dict[tuple[str, str, int], int] = {}
    for i, p in enumerate(planned):
        key = (p.source.name, p.tenant, p.serial)
        if not p.duplicate:
            assert key not in first_seen  # every distinct webhook once
            first_seen[key] = i
        else:
            assert first_seen[key] < i  # a resend comes after what it repeats
    assert {p.source.name for p in planned} == {s.name for s in SOURCES}
    by_tenant = Counter(p.tenant for p in planned if p.source.per_tenant)
    assert len(by_tenant) > 1  # several tenants


def test_the_same_serial_builds_the_same_webhook_and_distinct_serials_differ() -> None:
    for source in SOURCES:
        assert source.build(7, "pisos-sp") == source.build(7, "pisos-sp")
        assert source.build(7, "pisos-sp").body != source.build(8, "pisos-sp").body


# -- every source of the mix through the real edge, with the bench tenants' own configuration ---------------
@pytest.fixture
def bench_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TenantDirectory]:
    for name, value in bench_tenants.configure(tmp_path).items():
        monkeypatch.setenv(name, value)
    reset_store(SecretStore(backend="env"))
    yield TenantDirectory(file=tmp_path / "tenants.json")
    reset_store(None)


def send(directory: TenantDirectory, webhook: Webhook, tenant: str | None = None,
         raw: bytes | None = None) -> tuple[Response, list[Envelope]]:
    """The webhook as the stack's function gets it; `tenant` sends it to another tenant's URL instead,
    `raw` other bytes than its body's."""
    path, _, query = webhook.path.partition("?")
    if tenant is not None:
        path = "/" + "/".join([tenant, *path.split("/")[2:]])
    req = replace(request(raw=webhook.raw if raw is None else raw, headers=webhook.headers, path=path),
                  query=dict(parse_qsl(query)))
    publisher = RecordingPublisher()
    if webhook.function == "events":
        configured = settings(events_api_key=DEFAULT_EVENTS_API_KEY, max_body_bytes=262144)
        response = handle(req, function="events", router=generic_event.router(lambda: directory, lambda: configured),
                          publisher=publisher, settings=configured)
    else:
        response = handle(req, function=webhook.function, router=router(webhook.function, lambda: directory),
                          publisher=publisher, settings=settings(max_body_bytes=262144))
    return response, publisher.published


def lead_phone(source: Source, serial: int, envelope: Envelope) -> str:
    """The phone of the lead the event becomes (Meta Lead Ads: of the lead the Graph API answers)."""
    if source.graph_lead is None:
        return str(envelope.payload["phone"])
    lead_id, data = source.graph_lead(serial)
    ref = envelope.typed_payload()
    assert isinstance(ref, LeadgenReceived) and ref.leadgen_id == lead_id
    lead = lead_from_graph(data, ref)
    assert lead is not None and lead.source == source.lead_source and lead.phone
    return lead.phone


def test_every_source_a_tenant_can_turn_on_is_in_the_mix() -> None:
    sent = {(webhook.function, "api" if webhook.function == "events" else webhook.path.partition("?")[0].split("/")[-1])
            for webhook in (s.build(0, "pisos-sp") for s in SOURCES)}
    assert sent == {(channel, name) for channel, names in CHANNELS.items() for name in names}
    weights = Counter[str]()
    for s in SOURCES:
        weights[s.event_type] += s.weight
    assert weights["message_received"] > sum(weights.values()) / 2  # WhatsApp messages dominate


def test_each_webhook_is_accepted_for_its_tenant_only_and_becomes_one_event(bench_directory: TenantDirectory) -> None:
    for source in SOURCES:
        tenant = "obras-sul" if source.per_tenant else "default"
        webhook = source.build(5, tenant)
        response, published = send(bench_directory, webhook)
        assert response.status == 202, (source.name, response.body)
        [envelope] = published
        assert (envelope.event_type, envelope.tenant) == (source.event_type, tenant), source.name
        if source.per_tenant:  # the same bytes at another tenant's URL: that tenant's credentials don't match
            refused, nothing = send(bench_directory, webhook, tenant="pisos-sp")
            assert (refused.status, nothing) == (401, []), (source.name, refused.body)


def test_distinct_serials_are_distinct_events_and_distinct_leads_across_sources(
        bench_directory: TenantDirectory) -> None:
    event_ids: set[str] = set()
    phones: set[str] = set()
    for source in SOURCES:
        for serial in range(6):
            tenant = bench_tenants.TENANTS[serial % len(bench_tenants.TENANTS)] if source.per_tenant else "default"
            response, [envelope] = send(bench_directory, source.build(serial, tenant))
            assert response.status == 202
            event_ids.add(envelope.event_id)
            phones.add(lead_phone(source, serial, envelope))
    assert len(event_ids) == len(phones) == 6 * len(SOURCES)


def test_the_graph_lead_of_a_lead_ads_webhook_is_the_one_it_names() -> None:
    [source] = [s for s in SOURCES if s.graph_lead is not None]
    assert source.graph_lead is not None
    for serial in (0, 41):
        body = source.build(serial, "pisos-sp").body
        lead_id, data = source.graph_lead(serial)
        assert json.dumps(body).count(f'"leadgen_id": "{lead_id}"') == 1 and data["id"] == lead_id
    assert len(bench_tenants.page_tokens()) == len(bench_tenants.TENANTS)


def test_the_soak_doc_holds_the_checks_and_then_the_drills(tmp_path: Path) -> None:
    from bench import soak_doc

    doc = tmp_path / "soak.md"
    soak_doc.start([("webhooks answered 202", 10, 10, True), ("  leads rows", 9, 8, False)], ["soak: FAILED"], doc)
    soak_doc.append("## Fault drills (full form)\n\n| drill | measured |\n", doc)
    text = doc.read_text(encoding="utf-8")
    assert "| webhooks answered 202 | 10 | 10 | ok |" in text
    assert "| leads rows | 9 | 8 | **FAILED** |" in text
    assert text.index("## Soak") < text.index("## Fault drills") and "* nproc:" in text


def test_the_fuzz_re_signs_what_it_changes_and_the_edge_never_answers_5xx(
        bench_directory: TenantDirectory) -> None:
    """Every fuzzed body carries valid proof (a refused proof would test nothing), and is refused or accepted."""
    import random

    from bench.soak_fuzz import fuzzed

    rng = random.Random(5)
    seen: Counter[int] = Counter()
    for source in SOURCES:
        for i in range(40):
            webhook = source.build(i, "pisos-sp")
            fuzz = fuzzed(webhook, "pisos-sp", rng, "http://edge", source.name)
            again = Webhook(webhook.function, fuzz.url.removeprefix("http://edge"), {}, fuzz.headers)
            response, _ = send(bench_directory, replace(again, body={}), raw=fuzz.body)
            assert response.status < 500, (source.name, response.body)
            if response.status == 401:  # a changed platform id may be refused; never the proof itself (Google's
                # key is in the body: a body Python cannot parse has none)
                message = response.body["message"]
                assert "one of this tenant's" in message or message == "the body has no google_key", message
            seen[response.status // 100] += 1
    assert seen[2] > len(SOURCES) * 5 and seen[4] > len(SOURCES) * 5  # both halves of the rule are exercised
