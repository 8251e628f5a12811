"""`ctower tenants`: add tenants, turn their sources on and off, publish the document the edge reads.

The edits and the publishing are ops/tenants.py; this module is the click group over them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click
from pydantic import ValidationError

from ops.clikit import open_database
from ops.tenants import (
    TenantConfigError,
    TenantPublishError,
    add_tenant,
    current_config,
    deactivate,
    default_target,
    describe_errors,
    missing_secrets,
    publish,
    remove_source,
    set_source,
)
from shared.db import Database
from shared.tenants import CHANNELS, SourceSettings, TenantsConfig, render_config


def _run(database_url: str | None, target: str | None, publish_after: bool,
         edit: Callable[[Database], TenantsConfig]) -> None:
    database = open_database(database_url)
    try:
        config = edit(database)
    except TenantConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    finally:
        database.close()
    if publish_after:
        try:
            where = publish(config, target or default_target())
        except TenantPublishError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"published to {where}")


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
    database = open_database(database_url)
    try:
        config = current_config(database)
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
        raise click.BadParameter(describe_errors(exc)) from exc
    missing = missing_secrets(settings, target or default_target())
    if missing:
        click.echo(f"error: {'; '.join(missing)}. Add the value first (locally: the environment variable of the "
                   "stack and of ctower; in the cloud: gcloud secrets versions add NAME --data-file=-); "
                   "nothing was changed", err=True)
        sys.exit(2)
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
    _run(database_url, target, True, current_config)
