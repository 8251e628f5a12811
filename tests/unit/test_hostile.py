"""Hostile input at every endpoint, through the edge, with a recording publisher at the port boundary.

The edge rule, by property: a request is refused with a 4xx (naming the field when it is a
field), or what it publishes is an envelope the writers can store — every string free of NUL
and lone surrogates, every number printable, nesting bounded, and the envelope survives its
own Pub/Sub round trip. Never a 5xx, never an exception, nothing published without valid
proof. (tests/integration/test_edge_rule.py writes what is accepted into a real Postgres.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import storable
from shared.envelope import Envelope
from shared.phones import InvalidPhone, normalize_phone, phone_from_jid
from shared.tenants import TenantDirectory
from tests.fixtures.tenants import secret
from tests.hostile_inputs import (
    DEFAULT_DOORS,
    ENDPOINT_IDS,
    ENDPOINTS,
    Endpoint,
    any_char,
    any_text,
    header_value,
    hostile,
    json_leaf,
    json_value,
    send,
    send_hostile,
    serialize,
    signed,
    tenant_directory,
)

HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TenantDirectory]:
    with tenant_directory(Path(tmp_path_factory.mktemp("tenants"))) as found:
        yield found


def assert_storable(envelope: Envelope) -> None:
    """What the writers will get: storable, and the same after the Pub/Sub round trip."""
    storable.check(envelope.model_dump(mode="json"))
    assert Envelope.from_bytes(envelope.to_bytes()) == envelope
    envelope.typed_payload()  # the writer's own reading of the payload


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
@HYPOTHESIS
@given(data=st.data())
def test_hostile_bodies_with_valid_proof_are_refused_or_storable(directory: TenantDirectory, endpoint: Endpoint,
                                                                 data: st.DataObject) -> None:
    response, publisher = send_hostile(directory, endpoint, data)
    if response.status == 202:
        assert publisher.published and all(e.tenant == "acme" for e in publisher.published)
        for envelope in publisher.published:
            assert_storable(envelope)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
@HYPOTHESIS
@given(data=st.data())
def test_without_valid_proof_nothing_is_published(directory: TenantDirectory, endpoint: Endpoint,
                                                  data: st.DataObject) -> None:
    channel, source = endpoint.channel, endpoint.source
    original = endpoint.original()
    body_obj = data.draw(st.one_of(st.just(original), json_value))
    body = serialize(body_obj, data) if data.draw(st.booleans()) else data.draw(st.binary(max_size=300))
    headers = data.draw(st.dictionaries(st.sampled_from([
        "X-Hub-Signature-256", "Typeform-Signature", "X-Webhook-Token", "Authorization", "X-Correlation-ID"]),
        header_value, max_size=4))
    path = data.draw(st.sampled_from([f"/acme/{source}", f"/webhook/{channel}/acme/{source}", f"/globex/{source}",
                                      f"/{data.draw(st.text(max_size=10))}/{source}", "/acme"]))
    stranger = "acme" if "/globex/" in path else "globex"  # never the door's own tenant
    if data.draw(st.booleans()):  # another tenant's perfectly valid proof
        headers.update(signed(endpoint, body, stranger))
    if endpoint.proof == "google" and isinstance(body_obj, dict):
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


@pytest.mark.parametrize(("channel", "path", "seed"), DEFAULT_DOORS)
@HYPOTHESIS
@given(data=st.data())
def test_the_open_default_tenant_never_fails_on_bad_input(directory: TenantDirectory, channel: str, path: str,
                                                          seed: dict[str, Any], data: st.DataObject) -> None:
    response, publisher = send(directory, channel, path, serialize(hostile(seed, data), data), {})
    assert (response.status == 202) == bool(publisher.published)
    assert all(e.tenant == "default" for e in publisher.published)
    for envelope in publisher.published:
        assert_storable(envelope)


@HYPOTHESIS
@given(data=st.data(), key=st.sampled_from(["events-api-key", "wrong", ""]))
def test_the_events_key_is_checked_before_the_body_is_read(directory: TenantDirectory, data: st.DataObject,
                                                           key: str) -> None:
    """Without the key nothing in the body matters: even an unparseable or hostile one gets a 401."""
    body = data.draw(st.one_of(st.binary(max_size=200), st.builds(lambda: b"[" * 5000),
                               st.just(b'{"x": ' + b"9" * 5000 + b"}"), st.just(b'"\\ud800"')))
    token = secret("acme", key) if key == "events-api-key" else key
    response, publisher = send(directory, "events", "/acme/events", body, {"Authorization": f"Bearer {token}"})
    if key != "events-api-key":
        assert response.status == 401 and publisher.published == []
    else:
        assert response.status == 400


# -- the phone helpers are total -------------------------------------------------------------
phone_like = st.text(st.one_of(st.sampled_from("0123456789+@:.-() "), any_char), max_size=40)
jid_like = st.builds(lambda a, b: f"{a}@{b}", phone_like, st.sampled_from(
    ["s.whatsapp.net", "c.us", "g.us", "lid", "broadcast", "x@y", "", "@", "s.whatsapp.net@c.us"])) | phone_like


@settings(max_examples=500, deadline=None)
@given(text=jid_like)
def test_the_phone_helpers_answer_or_raise_invalid_phone_for_any_text(text: str) -> None:
    for helper in (normalize_phone, phone_from_jid):
        try:
            result = helper(text)
        except InvalidPhone:
            continue
        assert result.isdigit() and 8 <= len(result) <= 15


@pytest.mark.parametrize("text", ["a@b", "@", "+@", "5511999998888@x@y", "1@s.whatsapp.net@c.us", "@@@@"])
def test_an_at_sign_in_a_phone_is_an_invalid_phone_not_a_recursion(text: str) -> None:
    with pytest.raises(InvalidPhone):
        normalize_phone(text)


# -- the storable rule itself ------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(text=any_text)
def test_clean_text_leaves_only_what_utf8_and_postgres_hold(text: str) -> None:
    cleaned = storable.clean_text(text)
    cleaned.encode("utf-8")
    assert "\x00" not in cleaned and len(cleaned) == len(text)
    assert storable.clean_text(cleaned) == cleaned


@pytest.mark.parametrize(("raw", "field", "message"), [
    (b'{"a": [1, ' + b"9" * 5000 + b"]}", "a.1", "digits"),
    (b'{"a": {"b": NaN}}', "a.b", "NaN"),
    (b'{"a": -Infinity}', "a", "Infinity"),
    (b'{"a": 1e400}', "a", "out of range"),
    (b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}", "a." + ".".join(["0"] * 31), "deeper than 32"),
])
def test_what_cannot_be_stored_is_refused_naming_its_field(raw: bytes, field: str, message: str) -> None:
    with pytest.raises(storable.Unstorable) as refused:
        storable.loads(raw)
    assert refused.value.field == field and message in refused.value.message


def test_odd_characters_are_normalised_and_a_real_pair_is_kept() -> None:
    assert storable.loads(b'{"k\\u0000": "a\\u0000b\\ud800", "e": "\\ud83d\\ude00"}') == {
        "k\ufffd": "a\ufffdb\ufffd", "e": "\U0001f600"}


# -- time from callers is bounded ------------------------------------------------------------------
def test_an_events_occurred_at_beyond_the_clock_skew_is_refused_naming_it(directory: TenantDirectory) -> None:
    from datetime import UTC, datetime, timedelta

    from shared.envelope import CLOCK_SKEW

    def at(moment: str) -> tuple[int, Any]:
        body = json.dumps({"event_type": "stage_changed", "phone": "11999998888", "occurred_at": moment,
                           "payload": {"to_stage": "qualificado"}}).encode()
        response, publisher = send(directory, "events", "/acme/events", body,
                                   {"Authorization": f"Bearer {secret('acme', 'events-api-key')}"})
        return response.status, response.body.get("fields") or publisher.published[0].occurred_at

    now = datetime.now(UTC)
    status, fields = at((now + CLOCK_SKEW + timedelta(minutes=1)).isoformat())
    assert status == 400 and [f["field"] for f in fields] == ["occurred_at"]
    assert at("0001-01-01T00:00:00+14:00")[0] == 400  # no timestamp column holds it
    within = now + CLOCK_SKEW - timedelta(minutes=1)
    assert at(within.isoformat()) == (202, within)  # inside the allowance: kept as sent
    assert at("2026-01-01T09:00:00-03:00") == (202, datetime(2026, 1, 1, 12, tzinfo=UTC))
    assert at("2026-01-01T12:00:00") == (202, datetime(2026, 1, 1, 12, tzinfo=UTC))  # no offset: UTC


def test_a_platforms_time_beyond_the_allowance_becomes_received_at() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from shared.envelope import CLOCK_SKEW, bounded_occurred_at

    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    assert bounded_occurred_at(now + CLOCK_SKEW * 10, now) == now
    assert bounded_occurred_at(datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-14))), now) == now
    assert bounded_occurred_at(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))), now) == now
    assert bounded_occurred_at(now - timedelta(days=3), now) == now - timedelta(days=3)
    assert bounded_occurred_at(now + CLOCK_SKEW, now) == now + CLOCK_SKEW
    assert bounded_occurred_at(None, now) == now


deep_or_odd = st.recursive(json_leaf | st.floats() | st.sampled_from([10**40 - 1, 10**40, -(10**40)]),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
                           max_leaves=30)


@HYPOTHESIS
@given(value=deep_or_odd, depth=st.integers(0, 6))
def test_the_quick_storable_check_refuses_exactly_what_the_full_walk_refuses(value: Any, depth: int) -> None:
    """`check` answers from `_fits` and walks only what it doubts: the two must agree on every value."""
    try:
        storable._walk(value, ("payload",), normalise=False, limit=depth)
        walked: str | None = None
    except storable.Unstorable as exc:
        walked = str(exc)
    assert storable._fits(value, depth) == (walked is None)
    try:
        storable.check(value, "payload", max_depth=depth)
        checked: str | None = None
    except storable.Unstorable as exc:
        checked = str(exc)
    assert checked == walked
