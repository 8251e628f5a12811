"""The bench's tenants, configured the way an operator does (`ctower tenants`), with token proof.

The edge takes `/<tenant>/<source>` and wants proof of origin. With a stack, `register()`
adds the tenants and their token-proven sources through ops.tenants and publishes the
document to the stack's tenants file (the edge re-reads it). Without a database (the edge
bench), `configure()` writes the same document straight to a file. Secret values live in
the environment locally: `secret_env()` must be in the environment before functions start.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from shared.db import Database
from shared.secrets import env_name
from shared.tenants import SourceSettings, Tenant, TenantsConfig, render_config

TENANTS: tuple[str, ...] = ("pisos-sp", "imobiliaria-rj", "obras-sul", "default")
PROVEN_SOURCES = {"whatsapp": ("evolution",), "leads": ("form",)}  # token-proven sources the bench sends


def secret_name(tenant: str, source: str) -> str:
    return f"ct-{tenant}-{source}-token"


def token(tenant: str, source: str) -> str:
    return hashlib.sha256(f"bench|{tenant}|{source}".encode()).hexdigest()[:32]


def secret_env(tenants: Sequence[str] = TENANTS) -> dict[str, str]:
    env = {"SECRETS_BACKEND": "env"}
    for tenant in tenants:
        for sources in PROVEN_SOURCES.values():
            for source in sources:
                env[env_name(secret_name(tenant, source))] = token(tenant, source)
    return env


def _settings(tenant: str, source: str) -> SourceSettings:
    return SourceSettings(secret=secret_name(tenant, source))


def configure(workdir: Path, tenants: Sequence[str] = TENANTS) -> dict[str, str]:
    """Without a database: write the document; returns the environment functions need to read it."""
    config = TenantsConfig(tenants={
        tenant: Tenant(name=f"Bench {tenant}", require_proof=True, **{
            channel: {source: _settings(tenant, source) for source in sources}
            for channel, sources in PROVEN_SOURCES.items()})
        for tenant in tenants})
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
            for channel, sources in PROVEN_SOURCES.items():
                for source in sources:
                    set_source(db, tenant, channel, source, _settings(tenant, source))
            config = add_tenant(db, tenant, f"Bench {tenant}", require_proof=True)
        assert config is not None
        publish(config, str(tenants_file))
    finally:
        db.close()
