"""Which provider account sends for a tenant, and the dispatch to that provider's sender.

The `senders` section of the tenant's assistant settings names the account (instance,
phone number id) and the secrets holding its credentials. A base URL there wins;
otherwise EVOLUTION_API_URL, ZAPI_API_URL, META_GRAPH_BASE_URL, DIALOG360_API_URL or
GUPSHUP_API_URL (the providers' public APIs by default, except Evolution, which is always
self-hosted). `callback_ref` is the outbox's reference, sent where the provider echoes it.
"""

from __future__ import annotations

import os
import re

from pydantic import BaseModel, ConfigDict, Field

from shared.senders import dialog360, evolution, gupshup, meta, zapi
from shared.senders.base import SendError, SentMessage

ZAPI_DEFAULT_URL = "https://api.z-api.io"
DIALOG360_DEFAULT_URL = "https://waba-v2.360dialog.io"
GUPSHUP_DEFAULT_URL = "https://api.gupshup.io"
SecretName = str


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvolutionAccount(_Model):
    instance: str = Field(min_length=1)
    api_key_secret: SecretName
    base_url: str | None = None


class ZapiAccount(_Model):
    instance_id: str = Field(min_length=1)
    token_secret: SecretName
    client_token_secret: SecretName | None = None
    base_url: str | None = None


class MetaAccount(_Model):
    phone_number_id: str = Field(min_length=1)
    access_token_secret: SecretName
    base_url: str | None = None
    version: str | None = None


class Dialog360Account(_Model):
    api_key_secret: SecretName
    base_url: str | None = None


class GupshupAccount(_Model):
    source: str = Field(min_length=1, description="the business number, digits with country code")
    app_name: str = Field(min_length=1)
    api_key_secret: SecretName
    base_url: str | None = None


class SenderSettings(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    evolution: EvolutionAccount | None = None
    zapi: ZapiAccount | None = None
    meta: MetaAccount | None = None
    dialog360: Dialog360Account | None = Field(default=None, alias="360dialog")
    gupshup: GupshupAccount | None = None

    def sender_number(self, provider: str) -> str:
        """The sending account (instance, phone number id, source number): the unit a provider rate-limits."""
        account = {"evolution": self.evolution and self.evolution.instance, "zapi": self.zapi and self.zapi.instance_id,
                   "meta": self.meta and self.meta.phone_number_id,
                   "360dialog": self.dialog360 and self.dialog360.api_key_secret,
                   "gupshup": self.gupshup and self.gupshup.source}.get(provider)
        return f"{provider}:{account or '-'}"


def _secret(name: str) -> str:
    from shared.secrets import get_store

    return get_store().get(name)


def _base(configured: str | None, env: str, default: str | None) -> str:
    url = configured or os.environ.get(env) or default
    if not url:
        raise SendError(f"no base URL: set {env} or the sender's base_url")
    return url


def send_text(settings: SenderSettings, provider: str, phone: str, text: str, callback_ref: str) -> SentMessage:
    """Send `text` to `phone` (digits, with country code) through `provider`; raises SendError."""
    number = re.sub(r"\D", "", phone)
    if provider == "evolution" and settings.evolution:
        ev = settings.evolution
        return evolution.send(_base(ev.base_url, "EVOLUTION_API_URL", None), ev.instance, _secret(ev.api_key_secret),
                              number, text)
    if provider == "zapi" and settings.zapi:
        z = settings.zapi
        client_token = _secret(z.client_token_secret) if z.client_token_secret else None
        return zapi.send(_base(z.base_url, "ZAPI_API_URL", ZAPI_DEFAULT_URL), z.instance_id, _secret(z.token_secret),
                         client_token, number, text)
    if provider == "meta" and settings.meta:
        from shared.graph_api import DEFAULT_BASE_URL, DEFAULT_VERSION

        m = settings.meta
        return meta.send(_base(m.base_url, "META_GRAPH_BASE_URL", DEFAULT_BASE_URL),
                         m.version or os.environ.get("META_GRAPH_VERSION") or DEFAULT_VERSION, m.phone_number_id,
                         _secret(m.access_token_secret), number, text, callback_ref)
    if provider == "360dialog" and settings.dialog360:
        d = settings.dialog360
        return dialog360.send(_base(d.base_url, "DIALOG360_API_URL", DIALOG360_DEFAULT_URL), _secret(d.api_key_secret),
                              number, text, callback_ref)
    if provider == "gupshup" and settings.gupshup:
        g = settings.gupshup
        return gupshup.send(_base(g.base_url, "GUPSHUP_API_URL", GUPSHUP_DEFAULT_URL), _secret(g.api_key_secret),
                            g.source, g.app_name, number, text)
    raise SendError(f"no {provider} sender configured for this tenant (settings.json `senders`)")
