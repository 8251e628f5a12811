"""`ctower limits`: read and set a tenant's limits (the `tenant_limits` row; defaults without one)."""

from __future__ import annotations

import dataclasses

import click

from ops.clikit import EXIT_USAGE, emit, fail, json_option, ops_context, target_options

_SETTABLE = {  # option name -> column
    "messages_per_minute": "messages per minute before the assistant stops answering (default 500)",
    "new_leads_per_day": "new leads per day (Brazil's day) before the assistant stops answering (default 2000)",
    "assistant_calls_per_day": "model calls per day (default: settings.json daily_budget.calls)",
    "assistant_tokens_per_day": "model tokens per day (default: settings.json daily_budget.tokens)",
    "sends_per_minute_per_number": "outbound sends per minute per sending number (default 30)",
}


@click.group()
def limits() -> None:
    """Limits per tenant: over one, events are still recorded but the assistant stays silent."""


@limits.command("show")
@click.option("--tenant", required=True, help="Tenant id.")
@target_options
@json_option
def show(tenant: str, project: str | None, database_url: str | None, as_json: bool) -> None:
    """The tenant's limits in force (defaults where not set) and the first one it is over now, if any."""
    from shared.limits import exceeded, limits_for

    with ops_context(project, database_url, need_pubsub=False) as ctx:
        current = limits_for(ctx.database, tenant)
        over = exceeded(ctx.database, tenant, current)
    data = {"tenant": tenant, **dataclasses.asdict(current), "over": over}
    emit(data, as_json, [f"{k}: {'(settings.json)' if v is None else v}" for k, v in data.items()])


def _options(func: click.decorators.FC) -> click.decorators.FC:
    for name, meaning in reversed(_SETTABLE.items()):
        func = click.option(f"--{name.replace('_', '-')}", name, type=click.IntRange(min=0), help=meaning)(func)
    return func


@limits.command("set")
@click.option("--tenant", required=True, help="Tenant id.")
@_options
@target_options
@json_option
def set_(tenant: str, project: str | None, database_url: str | None, as_json: bool, **values: int | None) -> None:
    """Change some of the tenant's limits (the others keep their value); takes effect on the next message."""
    from shared.limits import limits_for

    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        fail(f"give at least one of: {', '.join('--' + k.replace('_', '-') for k in _SETTABLE)}", EXIT_USAGE)
    columns = ", ".join(given)
    with ops_context(project, database_url, need_pubsub=False) as ctx:
        with ctx.database.transaction() as cur:
            cur.execute("SELECT 1 FROM tenants WHERE id = %s", (tenant,))
            if cur.fetchone() is None:
                fail(f"no tenant {tenant!r} in the database", EXIT_USAGE)
            cur.execute(f"INSERT INTO tenant_limits (tenant_id, {columns}) "  # noqa: S608 - columns from _SETTABLE
                        f"VALUES (%s{', %s' * len(given)}) ON CONFLICT (tenant_id) DO UPDATE SET "
                        + ", ".join(f"{c} = EXCLUDED.{c}" for c in given) + ", updated_at = now()",
                        (tenant, *given.values()))
        current = limits_for(ctx.database, tenant)
    emit({"tenant": tenant, **dataclasses.asdict(current)}, as_json,
         [f"{tenant}: " + ", ".join(f"{k} {v}" for k, v in dataclasses.asdict(current).items())])
