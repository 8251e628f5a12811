"""Tenants, the sources each one takes, and the names of the secrets that prove them.

The edge never reads the database, so it reads this as a published JSON document: a
file (`TENANTS_FILE`, what the local stack uses; re-read when it changes) or the secret
`ct-tenants-config` (`TENANTS_SECRET`; Secret Manager in the cloud, re-read every
`TENANTS_TTL_SECONDS`). Operators edit the `tenants` / `tenant_sources` tables with
`ctower tenants` and it publishes the document, so a change needs no deploy. A document
that cannot be read or is invalid never opens a door: the last good one stays in use,
and with none the edge answers 503 so platforms retry.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.instance import PerInstance
from shared.log import get_logger
from shared.secrets import SecretStore, SecretUnavailable, get_store

log = get_logger(__name__)

DEFAULT_SECRET = "ct-tenants-config"  # noqa: S105 - a secret NAME, not a value
DEFAULT_TTL_SECONDS = 60.0
TENANT_ID = r"^[a-z0-9][a-z0-9_-]{1,62}$"  # the tenants table's CHECK
SecretName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{2,254}$")]

# Every source a tenant can turn on, by function ("channel").
CHANNELS: dict[str, tuple[str, ...]] = {
    "whatsapp": ("evolution", "zapi", "meta", "360dialog", "gupshup"),
    "leads": ("form", "meta", "typeform", "google_ads"),
    "events": ("api",),  # the back-office events API: `secret` names the tenant's API key
}
# Sources whose platform signs or keys every request: their secret is always required.
SIGNED = {("whatsapp", "meta"), ("leads", "meta"), ("leads", "typeform"), ("leads", "google_ads"), ("events", "api")}


class TenantsUnavailable(RuntimeError):
    """No valid tenant configuration can be read; the edge answers 503."""


class SourceSettings(BaseModel):
    """One source of one tenant: secret NAMES (never values) and the platform ids it accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: SecretName | None = None  # token, app secret, Typeform secret or Google key
    verify_token_secret: SecretName | None = None  # Meta: the GET hub.verify_token handshake
    jwt_secret: SecretName | None = None  # Evolution: the webhook's jwt_key (HS256)
    page_token_secret: SecretName | None = None  # Meta Lead Ads: page token for the Graph API
    ids: tuple[Annotated[str, Field(min_length=1, max_length=200)], ...] = ()  # instance/app/number/page/form ids
    # A form's field ref -> the lead field it fills, for forms whose refs are generated ids (Typeform).
    field_map: dict[Annotated[str, Field(min_length=1, max_length=200)],
                    Literal["name", "first_name", "last_name", "email", "phone"]] = Field(default_factory=dict)


class Tenant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    require_proof: bool = True
    whatsapp: dict[str, SourceSettings] = Field(default_factory=dict)
    leads: dict[str, SourceSettings] = Field(default_factory=dict)
    events: dict[str, SourceSettings] = Field(default_factory=dict)

    def source(self, channel: str, name: str) -> SourceSettings | None:
        sources: dict[str, SourceSettings] = getattr(self, channel, {})
        return sources.get(name)

    @model_validator(mode="after")
    def _sources_are_known_and_provable(self) -> Tenant:
        for channel in CHANNELS:
            for name, settings in getattr(self, channel).items():
                problem = source_problem(channel, name, settings, self.require_proof)
                if problem:
                    raise ValueError(f"{channel}/{name}: {problem}")
        return self


def source_problem(channel: str, name: str, settings: SourceSettings, require_proof: bool) -> str | None:
    """Why this source configuration cannot work, or None."""
    if name not in CHANNELS.get(channel, ()):
        return f"unknown source; {channel} takes {', '.join(CHANNELS.get(channel, ()))}"
    if (channel, name) in SIGNED and not settings.secret:
        return "needs --secret (the platform signs every request with it)"
    if require_proof and not (settings.secret or settings.jwt_secret):
        return "the tenant requires proof of origin: give --secret (or --jwt-secret for evolution)"
    if settings.jwt_secret and (channel, name) != ("whatsapp", "evolution"):
        return "--jwt-secret is only for evolution"
    if (settings.verify_token_secret or settings.page_token_secret) and name != "meta":
        return "--verify-token-secret and --page-token-secret are only for meta"
    if settings.page_token_secret and channel != "leads":
        return "--page-token-secret is only for leads/meta"
    if (channel, name) == ("leads", "meta") and not settings.page_token_secret:
        return "needs --page-token-secret to fetch each lead from the Graph API"
    return None


class TenantsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    tenants: dict[Annotated[str, Field(pattern=TENANT_ID)], Tenant] = Field(default_factory=dict)


def parse_config(text: str | bytes) -> TenantsConfig:
    """Validate a published document (raises ValueError with the reason)."""
    try:
        return TenantsConfig.model_validate(json.loads(text))
    except (json.JSONDecodeError, UnicodeDecodeError, ValidationError) as exc:
        raise ValueError(f"invalid tenant configuration: {exc}") from exc


def render_config(config: TenantsConfig) -> str:
    return json.dumps(config.model_dump(mode="json", exclude_defaults=False), indent=2, sort_keys=True) + "\n"


class TenantDirectory:
    """The instance's view of the tenant configuration, refreshed without a restart."""

    def __init__(self, *, file: Path | None = None, secret_name: str = DEFAULT_SECRET,
                 store: SecretStore | None = None, ttl_seconds: float = DEFAULT_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.file = file
        self.secret_name = secret_name
        self._store = store
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._config: TenantsConfig | None = None
        self._stamp: Any = None
        self._lock = threading.Lock()

    def get(self, tenant_id: str) -> Tenant | None:
        return self.config().tenants.get(tenant_id)

    def config(self) -> TenantsConfig:
        current = self._config
        if current is not None and self._unchanged():
            return current  # every request asks: no lock while the document is the one already read
        with self._lock:
            try:
                self._refresh()
            except (OSError, ValueError, SecretUnavailable) as exc:
                if self._config is None:
                    raise TenantsUnavailable(str(exc)) from exc
                log.error("tenant configuration not refreshed; keeping the last good one: %s", exc)
            assert self._config is not None
            return self._config

    def _unchanged(self) -> bool:
        """The document read is still the one to use (same file stamp, or inside its TTL); False when unsure."""
        if self.file is not None:
            try:
                stat = self.file.stat()
            except OSError:
                return False  # _refresh, under the lock, decides what a missing file means
            return bool((stat.st_mtime_ns, stat.st_size) == self._stamp)
        return self._stamp is not None and self._clock() - float(self._stamp) < self.ttl_seconds

    def _refresh(self) -> None:
        if self._config is not None and self._unchanged():
            return
        if self.file is not None:
            stat = self.file.stat()
            self._config = parse_config(self.file.read_bytes())
            self._stamp = (stat.st_mtime_ns, stat.st_size)
            return
        self._stamp = self._clock()  # one read per TTL even when it fails
        store = self._store or get_store()
        self._config = parse_config(store.get(self.secret_name, refresh=True))


def directory_from_env() -> TenantDirectory:
    file = os.environ.get("TENANTS_FILE")
    return TenantDirectory(file=Path(file) if file else None,
                           secret_name=os.environ.get("TENANTS_SECRET") or DEFAULT_SECRET,
                           ttl_seconds=float(os.environ.get("TENANTS_TTL_SECONDS") or DEFAULT_TTL_SECONDS))


_directory: PerInstance[TenantDirectory] = PerInstance(directory_from_env)


def get_directory() -> TenantDirectory:
    """The instance's tenant directory, made on first use from TENANTS_FILE / TENANTS_SECRET."""
    return _directory.get()


def reset_directory(directory: TenantDirectory | None = None) -> None:
    """Replace the instance's directory (tests)."""
    _directory.reset(directory)
