"""Proof of origin per source and tenant, through the edge: signatures, tokens, JWT, rotation, routing."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.edge import Response, handle
from shared.secrets import MIN_REFRESH_SECONDS, SecretStore, SecretUnavailable, env_name, reset_store
from shared.sources.routing import router, split_path
from shared.tenants import SourceSettings, Tenant, TenantDirectory, TenantsConfig, parse_config, render_config
from shared.verification import jwt_hs256_valid
from tests.fakes import RecordingPublisher
from tests.fixtures import raw
from tests.fixtures.tenants import (
    config,
    evolution_jwt,
    hub_signature,
    secret,
    secret_env,
    typeform_signature,
)
from tests.unit.edge_helpers import request, settings


@pytest.fixture
def directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TenantDirectory]:
    for name, value in secret_env().items():
        monkeypatch.setenv(name, value)
    reset_store(SecretStore(backend="env"))
    path = tmp_path / "tenants.json"
    path.write_text(render_config(config()))
    yield TenantDirectory(file=path)
    reset_store(None)


def send(directory: TenantDirectory, channel: str, path: str, body: bytes = b"{}",
         headers: dict[str, str] | None = None, method: str = "POST",
         query: dict[str, str] | None = None) -> tuple[Response, RecordingPublisher]:
    publisher = RecordingPublisher()
    req = request(raw=body, headers=headers, path=path, method=method)
    if query is not None:
        from dataclasses import replace

        req = replace(req, query=query)
    response = handle(req, function=channel, router=router(channel, lambda: directory), publisher=publisher,
                      settings=settings(max_body_bytes=262144))
    return response, publisher


# -- Meta -----------------------------------------------------------------
def test_meta_signature_on_the_raw_bytes(directory: TenantDirectory) -> None:
    body = raw("meta", "text")
    signed = {"X-Hub-Signature-256": hub_signature("acme", body)}
    ok, publisher = send(directory, "whatsapp", "/acme/meta", body, signed)
    assert ok.status == 202 and len(publisher.published) == 1
    assert publisher.published[0].tenant == "acme"
    reformatted = json.dumps(json.loads(body), indent=1).encode()  # same JSON, other bytes: not what was signed
    for headers in ({}, {"X-Hub-Signature-256": hub_signature("acme", reformatted)},
                    {"X-Hub-Signature-256": "sha256=" + "0" * 64},
                    {"X-Hub-Signature-256": hub_signature("globex", body)},
                    {"X-Hub-Signature-256": hub_signature("acme", body).removeprefix("sha256=")}):
        response, publisher = send(directory, "whatsapp", "/acme/meta", body, headers)
        assert response.status == 401, headers
        assert publisher.published == []


def test_meta_handshake(directory: TenantDirectory) -> None:
    good = {"hub.mode": "subscribe", "hub.verify_token": secret("acme", "meta-verify-token"),
            "hub.challenge": "1158201444"}
    response, _ = send(directory, "whatsapp", "/webhook/whatsapp/acme/meta", method="GET", query=good)
    assert (response.status, response.body) == (200, "1158201444")
    response, _ = send(directory, "leads", "/acme/meta", method="GET", query=good)
    assert (response.status, response.body) == (200, "1158201444")
    wrong = {**good, "hub.verify_token": secret("globex", "meta-verify-token")}
    assert send(directory, "whatsapp", "/acme/meta", method="GET", query=wrong)[0].status == 403
    assert send(directory, "whatsapp", "/acme/meta", method="GET", query={})[0].status == 400
    assert send(directory, "whatsapp", "/acme/evolution", method="GET", query=good)[0].status == 405


# -- Typeform, Google Ads ---------------------------------------------------
def test_typeform_base64_signature(directory: TenantDirectory) -> None:
    body = raw("typeform", "form_response")
    signed = {"Typeform-Signature": typeform_signature("acme", body)}
    ok, publisher = send(directory, "leads", "/acme/typeform", body, signed)
    assert ok.status == 202 and publisher.published[0].payload["form_id"] == "lT4Z3j"
    hex_instead = "sha256=" + hmac.new(secret("acme", "typeform-secret").encode(), body, hashlib.sha256).hexdigest()
    other = typeform_signature("globex", body)
    for headers in ({}, {"Typeform-Signature": hex_instead}, {"Typeform-Signature": other}):
        response, publisher = send(directory, "leads", "/acme/typeform", body, headers)
        assert response.status == 401 and publisher.published == []


def test_google_key_in_the_body(directory: TenantDirectory) -> None:
    lead: dict[str, Any] = json.loads(raw("google_ads", "lead"))
    lead["google_key"] = secret("acme", "google-key")
    ok, publisher = send(directory, "leads", "/acme/google_ads", json.dumps(lead).encode())
    assert ok.status == 202 and len(publisher.published) == 1
    for key in (secret("globex", "google-key"), "", None, 12345):
        forged = json.dumps({**lead, "google_key": key}).encode()
        response, publisher = send(directory, "leads", "/acme/google_ads", forged)
        assert response.status == 401 and publisher.published == []


# -- tokens and JWT -----------------------------------------------------------
@pytest.mark.parametrize("placement", ["header", "bearer", "query"])
def test_token_in_header_bearer_or_url(directory: TenantDirectory, placement: str) -> None:
    token = secret("acme", "zapi-token")
    headers = {"header": {"X-Webhook-Token": token}, "bearer": {"Authorization": f"Bearer {token}"}}.get(placement, {})
    query = {"token": token} if placement == "query" else None
    response, publisher = send(directory, "whatsapp", "/acme/zapi", raw("zapi", "text"), headers, query=query)
    assert response.status == 202 and publisher.published[0].tenant == "acme"


def test_wrong_or_missing_token_is_401_and_logged_without_the_body(
        directory: TenantDirectory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    for headers in ({}, {"X-Webhook-Token": "nope"}, {"X-Webhook-Token": secret("globex", "zapi-token")}):
        response, publisher = send(directory, "whatsapp", "/acme/zapi", raw("zapi", "text"), headers)
        assert response.status == 401 and publisher.published == []
    assert "Campinas" not in caplog.text and secret("acme", "zapi-token") not in caplog.text
    assert any(r.levelname == "WARNING" and getattr(r, "http_status", None) == 401 for r in caplog.records)


def test_evolution_jwt_when_configured(directory: TenantDirectory, tmp_path: Path) -> None:
    cfg = config()
    acme = cfg.tenants["acme"]
    evolution = acme.whatsapp["evolution"].model_copy(update={"jwt_secret": "ct-acme-evolution-jwt"})
    cfg = cfg.model_copy(update={"tenants": {**cfg.tenants, "acme": acme.model_copy(
        update={"whatsapp": {**acme.whatsapp, "evolution": evolution}})}})
    assert directory.file is not None
    directory.file.write_text(render_config(cfg))
    body = raw("evolution", "text")
    token = {"X-Webhook-Token": secret("acme", "evolution-token")}
    key = secret("acme", "evolution-jwt")
    bearer_ok = {**token, "Authorization": f"Bearer {evolution_jwt(key)}"}
    ok, _ = send(directory, "whatsapp", "/acme/evolution", body, bearer_ok)
    assert ok.status == 202
    for bearer in (evolution_jwt(key, exp_in=-3600), evolution_jwt(secret("globex", "evolution-jwt")), "a.b.c", ""):
        response, publisher = send(directory, "whatsapp", "/acme/evolution", body,
                                   {**token, "Authorization": f"Bearer {bearer}"})
        assert response.status == 401 and publisher.published == [], bearer
    assert send(directory, "whatsapp", "/acme/evolution", body,
                {"Authorization": f"Bearer {evolution_jwt(key)}"})[0].status == 401, "the token is still required"


def test_jwt_needs_hs256() -> None:
    key = b"k" * 32
    token = evolution_jwt("k" * 32)
    assert jwt_hs256_valid(token, key)
    head, claims, sig = token.split(".")
    none_alg = "eyJhbGciOiJub25lIn0"  # {"alg":"none"}
    assert not jwt_hs256_valid(f"{none_alg}.{claims}.{sig}", key)
    assert not jwt_hs256_valid(f"{head}.{claims}.", key)


# -- tenants and routes -----------------------------------------------------------
def test_paths_name_tenant_and_source() -> None:
    assert split_path("whatsapp", "/", "default") == ("default", "evolution")
    assert split_path("whatsapp", "/webhook/whatsapp", "default") == ("default", "evolution")
    assert split_path("leads", "/webhook/lead", "default") == ("default", "form")
    assert split_path("leads", "/webhook/leads/acme/typeform", "default") == ("acme", "typeform")
    assert split_path("whatsapp", "/acme/evolution/messages-upsert", "default") == ("acme", "evolution")
    for bad in ("/acme", "/acme/meta/extra", "/a/b/c/d"):
        with pytest.raises(Exception, match="tenant"):
            split_path("whatsapp", bad, "default")


def test_unknown_tenant_or_source_is_404_and_other_tenants_secret_is_401(directory: TenantDirectory) -> None:
    body = raw("zapi", "text")
    assert send(directory, "whatsapp", "/nobody/zapi", body)[0].status == 404
    assert send(directory, "whatsapp", "/acme/telegram", body)[0].status == 404
    assert send(directory, "whatsapp", "/NOT_A_TENANT!/zapi", body)[0].status == 404
    globex_token = {"X-Webhook-Token": secret("globex", "zapi-token")}
    response, publisher = send(directory, "whatsapp", "/acme/zapi", body, globex_token)
    assert response.status == 401 and publisher.published == []
    # globex's own door with globex's token, but acme's Z-API instance: the instance check refuses it
    response, publisher = send(directory, "whatsapp", "/globex/zapi", body, globex_token)
    assert response.status == 401 and publisher.published == []


def test_legacy_urls_go_to_the_default_tenant_without_proof(directory: TenantDirectory) -> None:
    from tests.seeds import LEAD, WHATSAPP

    for channel, path, body in (("leads", "/webhook/lead", LEAD), ("leads", "/", LEAD),
                                ("whatsapp", "/webhook/whatsapp", WHATSAPP), ("whatsapp", "/", WHATSAPP)):
        response, publisher = send(directory, channel, path, json.dumps(body).encode())
        assert response.status == 202, (path, response.body)
        assert publisher.published[0].tenant == "default"


def test_tenant_configuration_unavailable_is_503_never_open(tmp_path: Path) -> None:
    missing = TenantDirectory(file=tmp_path / "absent.json")
    response, publisher = send(missing, "whatsapp", "/", json.dumps({"event": "x"}).encode())
    assert response.status == 503 and response.headers["Retry-After"] == "5" and publisher.published == []
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert send(TenantDirectory(file=broken), "leads", "/acme/form")[0].status == 503


def test_a_bad_document_keeps_the_last_good_one(directory: TenantDirectory) -> None:
    assert directory.get("acme") is not None
    assert directory.file is not None
    directory.file.write_text('{"version": 1, "tenants": {"acme": {"name": "x", "leads": {"typeform": {}}}}}')
    assert directory.get("acme") == config().tenants["acme"]
    directory.file.write_text(render_config(TenantsConfig(tenants={})))
    assert directory.get("acme") is None, "a valid change is picked up without a restart"


def test_a_tenants_file_that_disappears_keeps_the_last_good_document(directory: TenantDirectory) -> None:
    assert directory.get("acme") is not None and directory.file is not None
    directory.file.unlink()
    assert directory.get("acme") == config().tenants["acme"]


class CountingStore(SecretStore):
    """The secret store's port: the tenants document, counting the reads."""

    def __init__(self) -> None:
        super().__init__(backend="env")
        self.reads = 0

    def get(self, name: str, refresh: bool = False) -> str:
        self.reads += 1
        return render_config(config())


def test_the_published_document_is_read_once_per_ttl() -> None:
    now = [0.0]
    store = CountingStore()
    directory = TenantDirectory(store=store, ttl_seconds=60, clock=lambda: now[0])
    assert directory.get("acme") is not None and directory.get("acme") is not None
    now[0] = 59.0
    assert directory.get("acme") is not None and store.reads == 1
    now[0] = 60.0
    assert directory.get("acme") is not None and store.reads == 2


def test_a_secret_missing_from_the_environment_is_503(directory: TenantDirectory,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(env_name("ct-acme-form-token"))
    response, publisher = send(directory, "leads", "/acme/form", b'{"phone": "11999998888"}',
                               {"X-Webhook-Token": "anything"})
    assert response.status == 503 and publisher.published == []


@pytest.mark.parametrize(("channel", "source", "settings", "require_proof", "problem"), [
    ("whatsapp", "meta", SourceSettings(), False, "needs --secret"),
    ("leads", "typeform", SourceSettings(), False, "needs --secret"),
    ("whatsapp", "zapi", SourceSettings(), True, "requires proof"),
    ("leads", "meta", SourceSettings(secret="ct-x-app"), True, "page-token"),
    ("whatsapp", "zapi", SourceSettings(secret="ct-x-z", jwt_secret="ct-x-j"), True, "only for evolution"),
    ("whatsapp", "telegram", SourceSettings(secret="ct-x-t"), True, "unknown source"),
])
def test_configurations_that_cannot_work_are_refused(channel: str, source: str, settings: SourceSettings,
                                                     require_proof: bool, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Tenant(name="x", require_proof=require_proof, **{channel: {source: settings}})


def test_published_document_round_trips_and_holds_no_secret_values() -> None:
    text = render_config(config())
    assert parse_config(text) == config()
    assert not any(value in text for value in secret_env().values())


# -- secrets ---------------------------------------------------------------
def test_secret_names_map_to_environment_variables_and_rotation_rereads(monkeypatch: pytest.MonkeyPatch) -> None:
    assert env_name("ct-acme-meta-app-secret") == "CT_ACME_META_APP_SECRET"
    now = [1000.0]
    store = SecretStore(backend="env", ttl_seconds=3600, clock=lambda: now[0])
    monkeypatch.setenv("CT_ROTATING", "old\n")
    assert store.get("ct-rotating") == "old"
    monkeypatch.setenv("CT_ROTATING", "new")
    assert store.get("ct-rotating") == "old", "cached"
    assert store.get("ct-rotating", refresh=True) == "old", "refresh is rate limited"
    now[0] += MIN_REFRESH_SECONDS + 1
    assert store.get("ct-rotating", refresh=True) == "new"
    with pytest.raises(SecretUnavailable):
        store.get("ct-not-set-anywhere")
    with pytest.raises(SecretUnavailable):
        store.get("../etc/passwd")


def test_a_rotated_meta_secret_is_accepted_without_restart(directory: TenantDirectory,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    body = raw("meta", "text")
    assert send(directory, "whatsapp", "/acme/meta", body,
                {"X-Hub-Signature-256": hub_signature("acme", body)})[0].status == 202  # caches the old secret
    rotated = "rotated-" + secret("acme", "meta-app-secret")
    monkeypatch.setenv(env_name("ct-acme-meta-app-secret"), rotated)
    signature = "sha256=" + hmac.new(rotated.encode(), body, hashlib.sha256).hexdigest()
    now = [10_000.0]
    reset_store(SecretStore(backend="env", clock=lambda: now[0]))
    from shared.secrets import get_store

    get_store()._cache["ct-acme-meta-app-secret"] = (secret("acme", "meta-app-secret"), now[0] - 60)
    assert send(directory, "whatsapp", "/acme/meta", body, {"X-Hub-Signature-256": signature})[0].status == 202
