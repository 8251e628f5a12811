"""The bench's tenants, configured the way an operator does (`ctower tenants`), with proof of origin.

The edge takes `/<tenant>/<source>` and wants proof of origin. Every bench tenant turns on
every source the soak sends (tests/traffic/sources.py), each with its credentials: a token for
Evolution, Z-API, 360dialog, Gupshup and the site form; the Meta app secret (WhatsApp Cloud API and
Lead Ads sign with it) and the page token leadgen_fetcher reads leads with; the Typeform
secret; the Google Ads key; and the platform ids the edge checks (Z-API instance, Meta
phone number id and page id, Gupshup app, Typeform and Google Ads form ids).

With a stack, `register()` adds the tenants and their sources through ops.tenants and
publishes the document to the stack's tenants file (the edge re-reads it). Without a
database (the edge bench), `configure()` writes the same document straight to a file.
Secret values live in the environment locally: `secret_env()` must be in the environment
before functions start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from pathlib import Path

from shared.db import Database
from shared.secrets import env_name
from shared.tenants import SourceSettings, Tenant, TenantsConfig, render_config

TENANTS: tuple[str, ...] = ("pisos-sp", "imobiliaria-rj", "obras-sul", "default")
# The secrets each tenant has, by what they are (named `ct-<tenant>-<what>`).
SECRETS: tuple[str, ...] = ("evolution-token", "zapi-token", "360dialog-token", "gupshup-token", "form-token",
                            "meta-app-secret", "meta-page-token", "typeform-secret", "google-key", "events-api-key")


def secret_name(tenant: str, what: str) -> str:
    return f"ct-{tenant}-{what}"


def _derived(tenant: str, what: str) -> str:
    return hashlib.sha256(f"bench|{tenant}|{what}".encode()).hexdigest()


def secret(tenant: str, what: str) -> str:
    """The value of a tenant's secret: derived, so every process of a run agrees without sharing state."""
    return _derived(tenant, what)[:32]


def token(tenant: str, source: str) -> str:
    """The token a token-proven source (evolution, zapi, 360dialog, gupshup, form) sends."""
    return secret(tenant, f"{source}-token")


def _number(tenant: str, what: str, digits: int) -> str:
    return str(int(_derived(tenant, what), 16))[:digits]


# The platform ids each tenant's sources are configured with (the edge refuses any other).
def zapi_instance(tenant: str) -> str:
    return _derived(tenant, "zapi-instance")[:32].upper()


def meta_phone_number_id(tenant: str) -> str:
    return _number(tenant, "meta-phone-number-id", 15)


def meta_page_id(tenant: str) -> str:
    return _number(tenant, "meta-page-id", 15)


def gupshup_app(tenant: str) -> str:
    return "Bench" + "".join(part.title() for part in tenant.split("-"))


def typeform_form(tenant: str) -> str:
    return _derived(tenant, "typeform-form")[:6]


def google_form(tenant: str) -> int:
    return int(_number(tenant, "google-form", 11))


def hub_signature(tenant: str, raw: bytes) -> str:
    """Meta's `X-Hub-Signature-256` (WhatsApp Cloud API and Lead Ads): hex HMAC-SHA256 with the app secret."""
    return "sha256=" + hmac.new(secret(tenant, "meta-app-secret").encode(), raw, hashlib.sha256).hexdigest()


def typeform_signature(tenant: str, raw: bytes) -> str:
    """Typeform's `Typeform-Signature`: base64 HMAC-SHA256 with the form's secret."""
    digest = hmac.new(secret(tenant, "typeform-secret").encode(), raw, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


def sources(tenant: str) -> dict[str, dict[str, SourceSettings]]:
    """Channel -> source -> settings: every source the soak sends, for this tenant."""
    def name(what: str) -> str:
        return secret_name(tenant, what)

    return {
        "whatsapp": {
            "evolution": SourceSettings(secret=name("evolution-token")),
            "zapi": SourceSettings(secret=name("zapi-token"), ids=(zapi_instance(tenant),)),
            "meta": SourceSettings(secret=name("meta-app-secret"), ids=(meta_phone_number_id(tenant),)),
            "360dialog": SourceSettings(secret=name("360dialog-token")),
            "gupshup": SourceSettings(secret=name("gupshup-token"), ids=(gupshup_app(tenant),)),
        },
        "leads": {
            "form": SourceSettings(secret=name("form-token")),
            "meta": SourceSettings(secret=name("meta-app-secret"), page_token_secret=name("meta-page-token"),
                                   ids=(meta_page_id(tenant),)),
            "typeform": SourceSettings(secret=name("typeform-secret"), ids=(typeform_form(tenant),)),
            "google_ads": SourceSettings(secret=name("google-key"), ids=(str(google_form(tenant)),)),
        },
        "events": {"api": SourceSettings(secret=name("events-api-key"))},
    }


def secret_env(tenants: Sequence[str] = TENANTS) -> dict[str, str]:
    env = {"SECRETS_BACKEND": "env"}
    for tenant in tenants:
        for what in SECRETS:
            env[env_name(secret_name(tenant, what))] = secret(tenant, what)
    return env


def page_tokens(tenants: Sequence[str] = TENANTS) -> set[str]:
    """The page tokens the Graph API (stand-in) must accept."""
    return {secret(tenant, "meta-page-token") for tenant in tenants}


def configure(workdir: Path, tenants: Sequence[str] = TENANTS) -> dict[str, str]:
    """Without a database: write the document; returns the environment functions need to read it."""
    config = TenantsConfig(tenants={
        tenant: Tenant(name=f"Bench {tenant}", require_proof=True, **sources(tenant)) for tenant in tenants})
    path = workdir / "tenants.json"
    path.write_text(render_config(config), encoding="utf-8")
    return {"TENANTS_FILE": str(path), **secret_env(tenants)}


def register(database_url: str, tenants_file: Path, tenants: Sequence[str] = TENANTS) -> None:
    """With a stack: add each tenant and its sources, then publish to the stack's tenants file."""
    from ops.tenants import add_tenant, publish, set_source

    db = Database.for_url(database_url, size=1)
    try:
        config = None
        for tenant in tenants:  # proof is required once every source has its secret (the default had none)
            add_tenant(db, tenant, f"Bench {tenant}", require_proof=False)
            for channel, settings in sources(tenant).items():
                for source, source_settings in settings.items():
                    set_source(db, tenant, channel, source, source_settings)
            config = add_tenant(db, tenant, f"Bench {tenant}", require_proof=True)
        assert config is not None
        publish(config, str(tenants_file))
    finally:
        db.close()
