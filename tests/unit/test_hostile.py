"""Hostile input at every endpoint, through the edge, with a recording publisher at the port boundary.

Random and mutated bodies, headers and signatures: the answer is always a 2xx or a 4xx
(never a 5xx, never an exception), and nothing is published without valid proof.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.edge import RawRequest, Response, handle
from shared.secrets import SecretStore, reset_store
from shared.sources import generic_event
from shared.sources.routing import router
from shared.tenants import TenantDirectory, render_config
from tests.fakes import RecordingPublisher
from tests.fixtures import load
from tests.fixtures.tenants import config, hub_signature, secret, secret_env, typeform_signature
from tests.seeds import LEAD, WHATSAPP
from tests.unit import edge_helpers

HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_leaf = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=40)
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=12), inner, max_size=4), max_leaves=20)
header_value = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)

# (channel, source, fixture provider, fixture name, how the platform proves itself)
ENDPOINTS = [
    ("whatsapp", "evolution", "evolution", "text", "token"),
    ("whatsapp", "zapi", "zapi", "text", "token"),
    ("whatsapp", "meta", "meta", "batch_two", "hub"),
    ("whatsapp", "360dialog", "360dialog", "text_cloud", "token"),
    ("whatsapp", "gupshup", "gupshup", "image_caption", "token"),
    ("leads", "form", None, None, "token"),
    ("leads", "meta", "meta_leadgen", "webhook_two", "hub"),
    ("leads", "typeform", "typeform", "form_response", "typeform"),
    ("leads", "google_ads", "google_ads", "lead", "google"),
]
TOKENS = {"evolution": "evolution-token", "zapi": "zapi-token", "360dialog": "360dialog-token",
          "gupshup": "gupshup-token", "form": "form-token"}


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TenantDirectory]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in secret_env().items():
            patch.setenv(name, value)
        reset_store(SecretStore(backend="env"))
        path = Path(tmp_path_factory.mktemp("tenants")) / "tenants.json"
        path.write_text(render_config(config()))
        yield TenantDirectory(file=path)
        reset_store(None)


def send(directory: TenantDirectory, channel: str, path: str, body: bytes, headers: dict[str, str],
         query: dict[str, str] | None = None, content_type: str | None = "application/json",
         method: str = "POST") -> tuple[Response, RecordingPublisher]:
    publisher = RecordingPublisher()
    base = edge_helpers.request(raw=body, headers=headers, path=path, content_type=content_type, method=method)
    req = RawRequest(method=base.method, path=base.path, headers=base.headers, content_type=base.content_type,
                     content_length=base.content_length, read_body=base.read_body, query=query or {})
    response = handle(req, function=channel, router=router(channel, lambda: directory), publisher=publisher,
                      settings=edge_helpers.settings(max_body_bytes=65536))
    assert 200 <= response.status < 500, (response.status, response.body)
    return response, publisher


def signed(kind: str, source: str, body: bytes, tenant: str = "acme") -> dict[str, str]:
    """The proof `tenant`'s platform would send with `body`."""
    if kind == "hub":
        return {"X-Hub-Signature-256": hub_signature(tenant, body)}
    if kind == "typeform":
        return {"Typeform-Signature": typeform_signature(tenant, body)}
    if kind == "token":
        return {"X-Webhook-Token": secret(tenant, TOKENS[source])}
    return {}


def mutate(value: Any, data: st.DataObject, depth: int = 0) -> Any:
    """Keep, drop, retype or recurse into each part of a real payload."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            action = data.draw(st.integers(0, 9))
            if action == 0:
                continue
            out[key] = data.draw(json_value) if action == 1 else mutate(item, data, depth + 1)
        return out
    if isinstance(value, list):
        items = [mutate(v, data, depth + 1) for v in value if data.draw(st.integers(0, 7))]
        return items + ([data.draw(json_value)] if data.draw(st.integers(0, 9)) == 0 else [])
    return data.draw(json_value) if data.draw(st.integers(0, 5)) == 0 else value


@pytest.mark.parametrize(("channel", "source", "provider", "name", "kind"), ENDPOINTS)
@HYPOTHESIS
@given(data=st.data())
def test_mutated_real_payloads_with_valid_proof_get_2xx_or_4xx(directory: TenantDirectory, channel: str, source: str,
                                                               provider: str | None, name: str | None, kind: str,
                                                               data: st.DataObject) -> None:
    original = load(provider, name) if provider and name else dict(LEAD)
    body_obj = mutate(original, data)
    if kind == "google" and isinstance(body_obj, dict) and data.draw(st.booleans()):
        body_obj["google_key"] = secret("acme", "google-key")
    body = json.dumps(body_obj).encode()
    response, publisher = send(directory, channel, f"/acme/{source}", body, signed(kind, source, body))
    if response.status == 202:
        assert publisher.published and all(e.tenant == "acme" for e in publisher.published)
    else:
        assert publisher.published == []


@pytest.mark.parametrize(("channel", "source", "provider", "name", "kind"), ENDPOINTS)
@HYPOTHESIS
@given(data=st.data())
def test_without_valid_proof_nothing_is_published(directory: TenantDirectory, channel: str, source: str,
                                                  provider: str | None, name: str | None, kind: str,
                                                  data: st.DataObject) -> None:
    original = load(provider, name) if provider and name else dict(LEAD)
    body_obj = data.draw(st.one_of(st.just(original), json_value))
    body = json.dumps(body_obj).encode() if data.draw(st.booleans()) else data.draw(st.binary(max_size=300))
    headers = data.draw(st.dictionaries(st.sampled_from([
        "X-Hub-Signature-256", "Typeform-Signature", "X-Webhook-Token", "Authorization", "X-Correlation-ID"]),
        header_value, max_size=4))
    path = data.draw(st.sampled_from([f"/acme/{source}", f"/webhook/{channel}/acme/{source}", f"/globex/{source}",
                                      f"/{data.draw(st.text(max_size=10))}/{source}", "/acme"]))
    stranger = "acme" if "/globex/" in path else "globex"  # never the door's own tenant
    if data.draw(st.booleans()):  # another tenant's perfectly valid proof
        headers.update(signed(kind, source, body, stranger))
    if kind == "google" and isinstance(body_obj, dict):
        body = json.dumps({**body_obj, "google_key": data.draw(st.sampled_from(
            [secret(stranger, "google-key"), "", "x"]))}).encode()
    query = data.draw(st.dictionaries(st.sampled_from(["token", "hub.mode", "hub.verify_token", "hub.challenge"]),
                                      header_value, max_size=3))
    content_type = data.draw(st.sampled_from(["application/json", "text/plain", None, "application/vnd.x+json"]))
    method = data.draw(st.sampled_from(["POST", "POST", "GET", "PUT"]))
    response, publisher = send(directory, channel, path, body, headers, query, content_type, method)
    assert publisher.published == []
    if method == "GET" and response.status == 200:
        assert query.get("hub.verify_token") in (secret("acme", "meta-verify-token"),
                                                 secret("globex", "meta-verify-token"))


@pytest.mark.parametrize(("channel", "path", "seed"), [("whatsapp", "/webhook/whatsapp", WHATSAPP),
                                                       ("leads", "/webhook/lead", LEAD)])
@HYPOTHESIS
@given(data=st.data())
def test_the_open_default_tenant_never_fails_on_bad_input(directory: TenantDirectory, channel: str, path: str,
                                                          seed: dict[str, Any], data: st.DataObject) -> None:
    body = json.dumps(mutate(seed, data)).encode()
    response, publisher = send(directory, channel, path, body, {})
    assert (response.status == 202) == bool(publisher.published)
    assert all(e.tenant == "default" for e in publisher.published)


@HYPOTHESIS
@given(body=json_value, key=st.sampled_from(["test-key", "wrong", ""]))
def test_events_endpoint_answers_2xx_or_4xx(body: Any, key: str) -> None:
    response, publisher = edge_helpers.call(generic_event.adapt, edge_helpers.request(
        body, headers={"Authorization": f"Bearer {key}"}))
    assert 200 <= response.status < 500
    if key != "test-key":
        assert 400 <= response.status < 500 and publisher.published == []
