"""Tenants, their sources and secret names: edited in Postgres, published to the edge (`ctower tenants`).

The `tenants` and `tenant_sources` tables are the operator's record (FK integrity for
every row the writers make, queryable, transactional). The webhook edge never reads
the database, so every change is validated as a whole and published as the JSON
document the edge reads: a file locally (`.local/tenants.json`, TENANTS_FILE), a new
version of the Secret Manager secret `ct-tenants-config` in the cloud. Instances pick
it up without a deploy (a changed file at once, the secret within TENANTS_TTL_SECONDS).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ops.stackinfo import local_dir
from shared.db import Cursor, Database, rows_as_dicts
from shared.secrets import secret_manager_client
from shared.tenants import CHANNELS, DEFAULT_SECRET, SourceSettings, TenantsConfig, render_config

DEFAULT_TENANT = "default"


class TenantConfigError(ValueError):
    """An edit that would leave a tenant unable to prove or route its sources; nothing is changed."""


class TenantPublishError(RuntimeError):
    """The document could not be published where it was sent; the tables keep the change."""


# -- the tables ------------------------------------------------------------
def read_config(cur: Cursor) -> TenantsConfig:
    """The active tenants and their sources as the document the edge reads (validated)."""
    cur.execute("SELECT id, name, require_proof FROM tenants WHERE active ORDER BY id")
    tenants: dict[str, dict[str, Any]] = {
        row["id"]: {"name": row["name"], "require_proof": row["require_proof"], **{channel: {} for channel in CHANNELS}}
        for row in rows_as_dicts(cur)}
    cur.execute("SELECT tenant_id, channel, source, settings FROM tenant_sources ORDER BY tenant_id, channel, source")
    for row in rows_as_dicts(cur):
        if row["tenant_id"] in tenants:
            settings = row["settings"] if isinstance(row["settings"], dict) else json.loads(row["settings"])
            tenants[row["tenant_id"]][row["channel"]][row["source"]] = settings
    try:
        return TenantsConfig.model_validate({"version": 1, "tenants": tenants})
    except ValidationError as exc:
        raise TenantConfigError(describe_errors(exc)) from exc


def describe_errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())


def add_tenant(db: Database, tenant_id: str, name: str, require_proof: bool = True) -> TenantsConfig:
    with db.transaction() as cur:
        cur.execute("INSERT INTO tenants (id, name, require_proof) VALUES (%s, %s, %s) "
                    "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, require_proof = EXCLUDED.require_proof, "
                    "active = true, updated_at = now()", (tenant_id, name, require_proof))
        return read_config(cur)


def set_source(db: Database, tenant_id: str, channel: str, source: str, settings: SourceSettings) -> TenantsConfig:
    """Turn a source on (or change it); refused, changing nothing, if the tenant would not validate."""
    with db.transaction() as cur:
        _require_tenant(cur, tenant_id)
        cur.execute("INSERT INTO tenant_sources (tenant_id, channel, source, settings) VALUES (%s, %s, %s, %s::jsonb) "
                    "ON CONFLICT (tenant_id, channel, source) DO UPDATE SET settings = EXCLUDED.settings, "
                    "updated_at = now()",
                    (tenant_id, channel, source, json.dumps(settings.model_dump(mode="json", exclude_defaults=True))))
        return read_config(cur)


def remove_source(db: Database, tenant_id: str, channel: str, source: str) -> TenantsConfig:
    with db.transaction() as cur:
        cur.execute("DELETE FROM tenant_sources WHERE tenant_id = %s AND channel = %s AND source = %s",
                    (tenant_id, channel, source))
        if cur.rowcount == 0:
            raise TenantConfigError(f"tenant {tenant_id} has no source {channel}/{source}")
        return read_config(cur)


def deactivate(db: Database, tenant_id: str) -> TenantsConfig:
    """Close a tenant's doors (404); its rows stay, as history and for the foreign keys."""
    with db.transaction() as cur:
        cur.execute("UPDATE tenants SET active = false, updated_at = now() WHERE id = %s", (tenant_id,))
        if cur.rowcount == 0:
            raise TenantConfigError(f"no tenant {tenant_id}")
        return read_config(cur)


def _require_tenant(cur: Cursor, tenant_id: str) -> None:
    cur.execute("SELECT 1 FROM tenants WHERE id = %s AND active", (tenant_id,))
    if cur.fetchone() is None:
        raise TenantConfigError(f"no active tenant {tenant_id}; add it first (ctower tenants add)")


def seed_local_default(db: Database) -> None:
    """The local stack's default tenant: generic form and Evolution, no proof (the README's curl examples).

    Only when the default tenant has no source yet, so a local change survives a restart.
    """
    with db.transaction() as cur:
        cur.execute("SELECT count(*) FROM tenant_sources WHERE tenant_id = %s", (DEFAULT_TENANT,))
        if cur.fetchone()[0]:
            return
        cur.execute("UPDATE tenants SET require_proof = false, updated_at = now() WHERE id = %s", (DEFAULT_TENANT,))
        for channel, source in (("whatsapp", "evolution"), ("leads", "form")):
            cur.execute("INSERT INTO tenant_sources (tenant_id, channel, source) VALUES (%s, %s, %s)",
                        (DEFAULT_TENANT, channel, source))
        read_config(cur)


# -- publishing ------------------------------------------------------------
def publish(config: TenantsConfig, target: str) -> str:
    """Write the document to `target` (a file path, or `secret:NAME`); returns where it went."""
    text = render_config(config)
    if target.startswith("secret:"):
        return _publish_secret(target.removeprefix("secret:"), text)
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Atomic: an instance re-reading the file sees the old document or the new one, never half.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tenants-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return str(path)


def _publish_secret(name: str, text: str) -> str:
    """A new version of secret `name` (created by Terraform); the edge reads `latest` within TENANTS_TTL_SECONDS."""
    from google.api_core import exceptions

    project = os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCP_PROJECT")
    if not project:
        raise TenantPublishError("set GOOGLE_CLOUD_PROJECT to publish to Secret Manager")
    client = secret_manager_client()
    try:
        version = client.add_secret_version(request={"parent": f"projects/{project}/secrets/{name}",
                                                     "payload": {"data": text.encode("utf-8")}}, timeout=30)
    except exceptions.GoogleAPICallError as exc:
        raise TenantPublishError(f"could not add a version to secret {name} in project {project} "
                                 f"({type(exc).__name__}: {exc.message}); it is created by Terraform, and "
                                 "you need roles/secretmanager.secretVersionAdder on it") from exc
    return str(version.name)


def default_target() -> str:
    """TENANTS_FILE; else the local stack's file when one runs or is configured; else the cloud secret."""
    if os.environ.get("TENANTS_FILE"):
        return os.environ["TENANTS_FILE"]
    if os.environ.get("CLOUD_SQL_INSTANCE") and not (local_dir() / "stack.json").exists():
        return f"secret:{os.environ.get('TENANTS_SECRET') or DEFAULT_SECRET}"
    return str(local_dir() / "tenants.json")


def prepare_local(db: Database, directory: Path) -> Path:
    """Seed the local default tenant and publish the document the local functions read."""
    seed_local_default(db)
    return Path(publish(current_config(db), str(directory / "tenants.json")))


def current_config(db: Database) -> TenantsConfig:
    """The tables as the document the edge reads, read in a transaction of its own."""
    with db.transaction() as cur:
        return read_config(cur)


def missing_secrets(settings: SourceSettings, target: str) -> list[str]:
    """Why each secret the settings name cannot be read where the edge will read it (empty: all have values).

    Publishing to `secret:...` means the cloud: the names are looked up in Secret Manager;
    otherwise in the environment, as the local stack's functions read them.
    """
    from shared.secrets import SecretStore, SecretUnavailable, env_name

    backend = os.environ.get("SECRETS_BACKEND") or ("secretmanager" if target.startswith("secret:") else "env")
    store = SecretStore(backend=backend)
    problems = []
    for name in (settings.secret, settings.verify_token_secret, settings.jwt_secret, settings.page_token_secret):
        if not name:
            continue
        try:
            store.get(name)
        except SecretUnavailable:
            where = f"environment variable {env_name(name)}" if store.backend == "env" else "Secret Manager"
            problems.append(f"secret {name} has no value ({where})")
    return problems


__all__ = ["TenantConfigError", "TenantPublishError", "add_tenant", "current_config", "deactivate", "default_target",
           "describe_errors", "missing_secrets", "prepare_local", "publish", "read_config", "remove_source",
           "seed_local_default", "set_source"]
