"""`ctower tenants`: tenants, their sources and secret names — edited in Postgres, published to the edge.

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
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from shared.db import Cursor, Database, rows_as_dicts
from shared.secrets import secret_manager_client
from shared.tenants import CHANNELS, DEFAULT_SECRET, SourceSettings, TenantsConfig, render_config

DEFAULT_TENANT = "default"


class TenantConfigError(ValueError):
    """An edit that would leave a tenant unable to prove or route its sources; nothing is changed."""


# -- the tables ------------------------------------------------------------
def read_config(cur: Cursor) -> TenantsConfig:
    """The active tenants and their sources as the document the edge reads (validated)."""
    cur.execute("SELECT id, name, require_proof FROM tenants WHERE active ORDER BY id")
    tenants: dict[str, dict[str, Any]] = {
        row["id"]: {"name": row["name"], "require_proof": row["require_proof"], "whatsapp": {}, "leads": {}}
        for row in rows_as_dicts(cur)}
    cur.execute("SELECT tenant_id, channel, source, settings FROM tenant_sources ORDER BY tenant_id, channel, source")
    for row in rows_as_dicts(cur):
        if row["tenant_id"] in tenants:
            settings = row["settings"] if isinstance(row["settings"], dict) else json.loads(row["settings"])
            tenants[row["tenant_id"]][row["channel"]][row["source"]] = settings
    try:
        return TenantsConfig.model_validate({"version": 1, "tenants": tenants})
    except ValidationError as exc:
        raise TenantConfigError(_readable(exc)) from exc


def _readable(exc: ValidationError) -> str:
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
        raise click.ClickException("set GOOGLE_CLOUD_PROJECT to publish to Secret Manager")
    client = secret_manager_client()
    try:
        version = client.add_secret_version(request={"parent": f"projects/{project}/secrets/{name}",
                                                     "payload": {"data": text.encode("utf-8")}}, timeout=30)
    except exceptions.GoogleAPICallError as exc:
        raise click.ClickException(f"could not add a version to secret {name} in project {project} "
                                   f"({type(exc).__name__}: {exc.message}); it is created by Terraform, and "
                                   "you need roles/secretmanager.secretVersionAdder on it") from exc
    return str(version.name)


def default_target() -> str:
    """TENANTS_FILE; else the local stack's file when one runs or is configured; else the cloud secret."""
    if os.environ.get("TENANTS_FILE"):
        return os.environ["TENANTS_FILE"]
    from ops.stack import local_dir

    if os.environ.get("CLOUD_SQL_INSTANCE") and not (local_dir() / "stack.json").exists():
        return f"secret:{os.environ.get('TENANTS_SECRET') or DEFAULT_SECRET}"
    return str(local_dir() / "tenants.json")


def prepare_local(db: Database, directory: Path) -> Path:
    """Seed the local default tenant and publish the document the local functions read."""
    seed_local_default(db)
    with db.transaction() as cur:
        config = read_config(cur)
    return Path(publish(config, str(directory / "tenants.json")))


# -- the command group -----------------------------------------------------
def _db(database_url: str | None) -> Database:
    from ops.cli import _database

    return _database(database_url)


def _run(database_url: str | None, target: str | None, publish_after: bool, edit: Any) -> None:
    database = _db(database_url)
    try:
        config = edit(database)
    except TenantConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    finally:
        database.close()
    if publish_after:
        click.echo(f"published to {publish(config, target or default_target())}")


_database_option = click.option("--database-url", envvar="DATABASE_URL",
                                help="Postgres URL (default: the local stack's).")
_target_option = click.option("--to", "target",
                              help="Publish to this file, or secret:NAME (default: TENANTS_FILE, the local "
                                   "stack's .local/tenants.json, or secret:ct-tenants-config).")
_no_publish = click.option("--no-publish", is_flag=True, help="Change the tables only; publish later.")


def _source_ref(value: str) -> tuple[str, str]:
    channel, _, source = value.partition("/")
    if channel not in CHANNELS or source not in CHANNELS[channel]:
        choices = ", ".join(f"{c}/{s}" for c, sources in CHANNELS.items() for s in sources)
        raise click.BadParameter(f"{value!r}: one of {choices}")
    return channel, source


@click.group()
def tenants() -> None:
    """Tenants, their sources and the names of their secrets (published to the edge; no deploy)."""


@tenants.command("list")
@_database_option
@click.option("--json", "as_json", is_flag=True, help="The document the edge reads.")
def list_tenants(database_url: str | None, as_json: bool) -> None:
    """Active tenants, whether they require proof, and each source's secret names and ids."""
    database = _db(database_url)
    try:
        with database.transaction() as cur:
            config = read_config(cur)
    finally:
        database.close()
    if as_json:
        click.echo(render_config(config), nl=False)
        return
    for tenant_id, tenant in config.tenants.items():
        click.echo(f"{tenant_id}  ({tenant.name}; proof {'required' if tenant.require_proof else 'optional'})")
        for channel in CHANNELS:
            for source, settings in getattr(tenant, channel).items():
                named = {k: v for k, v in settings.model_dump(exclude_defaults=True).items()}
                click.echo(f"  {channel}/{source}  {json.dumps(named, default=list) if named else '(no proof)'}")


@tenants.command("add")
@click.argument("tenant_id")
@click.option("--name", required=True, help="The business's name.")
@click.option("--no-proof", is_flag=True, help="Accept sources without a secret (local/dev tenants only).")
@_database_option
@_target_option
@_no_publish
def add(tenant_id: str, name: str, no_proof: bool, database_url: str | None, target: str | None,
        no_publish: bool) -> None:
    """Add (or re-activate, or rename) a tenant. TENANT_ID: lower case, digits, '-' or '_'."""
    _run(database_url, target, not no_publish, lambda db: add_tenant(db, tenant_id, name, not no_proof))


@tenants.command("set-source")
@click.argument("tenant_id")
@click.argument("source", metavar="CHANNEL/SOURCE")
@click.option("--secret", help="Secret NAME: token (evolution, zapi, 360dialog, gupshup, form), app secret "
                               "(meta), Typeform secret, or Google Ads key.")
@click.option("--verify-token-secret", help="Secret NAME of Meta's hub.verify_token (the GET handshake).")
@click.option("--jwt-secret", help="Secret NAME of Evolution's webhook jwt_key (HS256 bearer).")
@click.option("--page-token-secret", help="Secret NAME of the page token leadgen_fetcher uses (leads/meta).")
@click.option("--id", "ids", multiple=True, help="A platform id this source accepts (instance, app, "
                                                  "phone_number_id, page, form); repeat for several.")
@click.option("--map", "field_map", multiple=True, metavar="REF=FIELD",
              help="A form field's ref and the lead field it fills (name, first_name, last_name, email, phone), "
                   "for forms whose refs are generated ids (Typeform); repeat for several.")
@_database_option
@_target_option
@_no_publish
def set_source_command(tenant_id: str, source: str, secret: str | None, verify_token_secret: str | None,
                       jwt_secret: str | None, page_token_secret: str | None, ids: tuple[str, ...],
                       field_map: tuple[str, ...], database_url: str | None, target: str | None,
                       no_publish: bool) -> None:
    """Turn a source on for a tenant, or replace its settings (e.g. whatsapp/meta, leads/typeform)."""
    channel, name = _source_ref(source)
    if any("=" not in pair for pair in field_map):
        raise click.BadParameter("--map takes REF=FIELD, e.g. --map 01HF3QZ8W2Y5=name")
    try:
        settings = SourceSettings.model_validate({
            "secret": secret, "verify_token_secret": verify_token_secret, "jwt_secret": jwt_secret,
            "page_token_secret": page_token_secret, "ids": ids,
            "field_map": dict(pair.split("=", 1) for pair in field_map)})
    except ValidationError as exc:
        raise click.BadParameter(_readable(exc)) from exc
    _run(database_url, target, not no_publish, lambda db: set_source(db, tenant_id, channel, name, settings))


@tenants.command("remove-source")
@click.argument("tenant_id")
@click.argument("source", metavar="CHANNEL/SOURCE")
@_database_option
@_target_option
@_no_publish
def remove_source_command(tenant_id: str, source: str, database_url: str | None, target: str | None,
                          no_publish: bool) -> None:
    """Turn a source off: its URL answers 404."""
    channel, name = _source_ref(source)
    _run(database_url, target, not no_publish, lambda db: remove_source(db, tenant_id, channel, name))


@tenants.command("remove")
@click.argument("tenant_id")
@_database_option
@_target_option
@_no_publish
def remove(tenant_id: str, database_url: str | None, target: str | None, no_publish: bool) -> None:
    """Deactivate a tenant: every URL of it answers 404; its data stays."""
    _run(database_url, target, not no_publish, lambda db: deactivate(db, tenant_id))


@tenants.command("publish")
@_database_option
@_target_option
def publish_command(database_url: str | None, target: str | None) -> None:
    """Publish the tables as they are (after --no-publish edits, or to a new target)."""
    _run(database_url, target, True, lambda db: _read(db))


def _read(db: Database) -> TenantsConfig:
    with db.transaction() as cur:
        return read_config(cur)


__all__ = ["add_tenant", "deactivate", "prepare_local", "publish", "read_config", "remove_source",
           "set_source", "tenants"]
