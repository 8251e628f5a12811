"""Hostile input for every endpoint: strategies, the endpoints with their proofs, and one way to send.

Shared by the edge's property tests (tests/unit/test_hostile.py: a recording publisher at the
port boundary) and the storage half of the edge rule (tests/integration/test_edge_rule.py:
what the edge accepts goes through the real subscriber and writers into Postgres).
Strings range over the whole of Unicode, lone surrogates and NUL included; numbers reach past
what Python will print; nesting goes past what the edge allows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

from shared.edge import Response, handle
from shared.inbound import RawRequest
from shared.secrets import SecretStore, reset_store
from shared.sources import generic_event
from shared.sources.routing import router
from shared.tenants import TenantDirectory, render_config
from tests.fakes import RecordingPublisher
from tests.fixtures import load
from tests.fixtures.tenants import config, hub_signature, secret, secret_env, typeform_signature
from tests.seeds import LEAD, WHATSAPP
from tests.unit import edge_helpers

# Any code point: the usual ones, and often the two Postgres cannot hold (NUL, a lone surrogate).
any_char = st.one_of(st.characters(), st.characters(categories=["Cs"]), st.just("\x00"))
any_text = st.text(any_char, max_size=40)
json_leaf = (st.none() | st.booleans() | st.integers(-(10**60), 10**60) | st.floats(allow_nan=False)
             | any_text)
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    any_text, inner, max_size=4), max_leaves=20)
header_value = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80)

PLACEHOLDER = "\u2603hostile\u2603"  # replaced, in the serialized body, by a literal json.dumps cannot write


@st.composite
def hostile_literal(draw: st.DrawFn) -> str:
    """JSON text that parses in Python but that no writer could store or print as it is."""
    kind = draw(st.sampled_from(["huge_int", "long_int", "nan", "infinity", "big_float", "deep", "nul",
                                 "surrogate", "pair", "nul_key", "time"]))
    if kind == "huge_int":
        return ("-" if draw(st.booleans()) else "") + "9" * draw(st.integers(4301, 6000))
    if kind == "long_int":
        return "1" * draw(st.integers(41, 4300))
    if kind == "nan":
        return "NaN"
    if kind == "infinity":
        return draw(st.sampled_from(["Infinity", "-Infinity"]))
    if kind == "big_float":
        return draw(st.sampled_from(["1e400", "-1e999", "1.5e308"]))
    if kind == "deep":
        depth = draw(st.integers(20, 3000))
        return "[" * depth + "]" * depth if draw(st.booleans()) else '{"a":' * depth + "1" + "}" * depth
    if kind == "nul":
        return '"a\\u0000b"'
    if kind == "surrogate":
        return draw(st.sampled_from(['"\\ud800"', '"x\\udfff"', '"\\udc00\\ud800"']))
    if kind == "time":  # times no timestamp column holds, far futures, no offset
        return draw(st.sampled_from(['"0001-01-01T00:00:00+14:00"', '"9999-12-31T23:59:59-14:00"',
                                     '"2999-01-01T00:00:00Z"', '"2026-01-01T00:00:00"', "253402300800"]))
    if kind == "pair":
        return '"\\ud83d\\ude00"'  # a well-formed pair: must be kept as the one character it is
    return '{"k\\u0000\\ud800": "v"}'


def mutate(value: Any, data: st.DataObject) -> Any:
    """Keep, drop, retype or recurse into each part of a real payload; sometimes plant a hostile literal."""
    def leaf() -> Any:
        return PLACEHOLDER if data.draw(st.integers(0, 3)) == 0 else data.draw(json_value)

    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            action = data.draw(st.integers(0, 9))
            if action == 0:
                continue
            out[key] = leaf() if action == 1 else mutate(item, data)
        if data.draw(st.integers(0, 9)) == 0:
            out[data.draw(any_text)] = leaf()
        return out
    if isinstance(value, list):
        items = [mutate(v, data) for v in value if data.draw(st.integers(0, 7))]
        return items + ([leaf()] if data.draw(st.integers(0, 9)) == 0 else [])
    return leaf() if data.draw(st.integers(0, 5)) == 0 else value


def taint(value: Any, data: st.DataObject) -> Any:
    """A real payload kept whole, with odd characters spliced into its strings and odd fields added."""
    if isinstance(value, str):
        if data.draw(st.integers(0, 2)):
            return value
        at = data.draw(st.integers(0, len(value)))
        return value[:at] + data.draw(any_text) + value[at:]
    if isinstance(value, list):
        return [taint(v, data) for v in value]
    if isinstance(value, dict):
        out = {key: taint(item, data) for key, item in value.items()}
        if data.draw(st.integers(0, 4)) == 0:
            out[data.draw(any_text)] = PLACEHOLDER if data.draw(st.integers(0, 2)) == 0 else data.draw(json_value)
        return out
    return value


def hostile(original: Any, data: st.DataObject) -> Any:
    """Either a tainted real payload (mostly accepted) or a mutated one (mostly refused)."""
    return taint(original, data) if data.draw(st.booleans()) else mutate(original, data)


def serialize(body: Any, data: st.DataObject) -> bytes:
    """JSON bytes, with each planted placeholder replaced by a hostile literal."""
    text = json.dumps(body)  # ensure_ascii: lone surrogates and NUL travel as \\u escapes, as platforms send them
    quoted = json.dumps(PLACEHOLDER)
    while quoted in text:
        text = text.replace(quoted, data.draw(hostile_literal()), 1)
    return text.encode()


@dataclass(frozen=True)
class Endpoint:
    channel: str  # the HTTP function
    source: str
    proof: str  # how the platform proves itself: token, hub, typeform, google, bearer
    provider: str | None = None  # fixture directory and name of a real payload
    name: str | None = None

    def original(self) -> Any:
        if self.provider and self.name:
            return load(self.provider, self.name)
        if self.channel == "events":
            return {"event_type": "stage_changed", "phone": "11999998888", "occurred_at": "2026-01-01T12:00:00Z",
                    "payload": {"from_stage": "triagem", "to_stage": "qualificado", "reason": "respondeu"}}
        return dict(LEAD)


ENDPOINTS = [
    Endpoint("whatsapp", "evolution", "token", "evolution", "text"),
    Endpoint("whatsapp", "zapi", "token", "zapi", "text"),
    Endpoint("whatsapp", "meta", "hub", "meta", "batch_two"),
    Endpoint("whatsapp", "360dialog", "token", "360dialog", "text_cloud"),
    Endpoint("whatsapp", "gupshup", "token", "gupshup", "image_caption"),
    Endpoint("leads", "form", "token"),
    Endpoint("leads", "meta", "hub", "meta_leadgen", "webhook_two"),
    Endpoint("leads", "typeform", "typeform", "typeform", "form_response"),
    Endpoint("leads", "google_ads", "google", "google_ads", "lead"),
    Endpoint("events", "events", "bearer"),
]
ENDPOINT_IDS = [f"{e.channel}/{e.source}" for e in ENDPOINTS]
TOKENS = {"evolution": "evolution-token", "zapi": "zapi-token", "360dialog": "360dialog-token",
          "gupshup": "gupshup-token", "form": "form-token"}
# The default tenant's open doors (no proof), with the seed payloads.
DEFAULT_DOORS = [("whatsapp", "/webhook/whatsapp", WHATSAPP), ("leads", "/webhook/lead", LEAD)]


@contextmanager
def tenant_directory(workdir: Path) -> Iterator[TenantDirectory]:
    """The test tenants (acme, globex, default) as the edge reads them, their secrets in the environment."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in secret_env().items():
            patch.setenv(name, value)
        reset_store(SecretStore(backend="env"))
        path = workdir / "tenants.json"
        path.write_text(render_config(config()))
        try:
            yield TenantDirectory(file=path)
        finally:
            reset_store(None)


def path_for(endpoint: Endpoint, tenant: str = "acme") -> str:
    return f"/{tenant}/{endpoint.source}"


def signed(endpoint: Endpoint, body: bytes, tenant: str = "acme") -> dict[str, str]:
    """The proof `tenant`'s platform would send with `body`."""
    if endpoint.proof == "hub":
        return {"X-Hub-Signature-256": hub_signature(tenant, body)}
    if endpoint.proof == "typeform":
        return {"Typeform-Signature": typeform_signature(tenant, body)}
    if endpoint.proof == "token":
        return {"X-Webhook-Token": secret(tenant, TOKENS[endpoint.source])}
    if endpoint.proof == "bearer":
        return {"Authorization": f"Bearer {secret(tenant, 'events-api-key')}"}
    return {}


def with_google_key(endpoint: Endpoint, body_obj: Any, data: st.DataObject) -> Any:
    """Google Ads proves itself inside the body: sometimes give the right key."""
    if endpoint.proof == "google" and isinstance(body_obj, dict) and data.draw(st.booleans()):
        return {**body_obj, "google_key": secret("acme", "google-key")}
    return body_obj


def send(directory: TenantDirectory, channel: str, path: str, body: bytes, headers: dict[str, str],
         query: dict[str, str] | None = None, content_type: str | None = "application/json",
         method: str = "POST") -> tuple[Response, RecordingPublisher]:
    """One request through the function's real pipeline; the answer is never a 5xx."""
    publisher = RecordingPublisher()
    base = edge_helpers.request(raw=body, headers=headers, path=path, content_type=content_type, method=method)
    req = RawRequest(method=base.method, path=base.path, headers=base.headers, content_type=base.content_type,
                     content_length=base.content_length, read_body=base.read_body, query=query or {})
    settings = edge_helpers.settings(max_body_bytes=65536)
    route = generic_event.router(lambda: directory, lambda: settings) if channel == "events" \
        else router(channel, lambda: directory)
    response = handle(req, function=channel, router=route, publisher=publisher, settings=settings)
    assert 200 <= response.status < 500, (response.status, response.body)
    json.dumps(response.body, ensure_ascii=False).encode("utf-8")  # the answer itself can be sent
    if response.status == 400 and isinstance(response.body, dict) and response.body["error"] == "invalid_request":
        assert response.body.get("fields"), response.body  # a refusal names the field at fault
    if response.status != 202:
        assert publisher.published == []
    return response, publisher


def send_hostile(directory: TenantDirectory, endpoint: Endpoint,
                 data: st.DataObject) -> tuple[Response, RecordingPublisher]:
    """A hostile variant of the endpoint's real body, with acme's valid proof, through its pipeline."""
    body = serialize(with_google_key(endpoint, hostile(endpoint.original(), data), data), data)
    return send(directory, endpoint.channel, path_for(endpoint), body, signed(endpoint, body))
