"""`ctower catalog`: a tenant's product catalog (import from CSV, try the assistant's search)."""

from __future__ import annotations

from pathlib import Path

import click

from ops.clikit import EXIT_PROBLEMS, EXIT_USAGE, emit, fail, json_option, ops_context, target_options


@click.group()
def catalog() -> None:
    """The products the assistant may quote, per tenant."""


@catalog.command("import", epilog="Exit 1 when a row is invalid (nothing imported); 2 for an unknown tenant.")
@click.option("--tenant", required=True, help="Tenant id.")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@target_options
@json_option
def import_(tenant: str, csv_file: Path, project: str | None, database_url: str | None, as_json: bool) -> None:
    """Replace the tenant's catalog with CSV_FILE, all rows or none.

    Header: sku, name, price (required) and unit, category, description; `,` or `;`
    separated, UTF-8. Prices like 89,90 or 1.234,56 or 89.90. Every invalid row is
    reported with its line number, and then nothing is imported.
    """
    from shared.assistant.catalog import parse_csv, replace_catalog

    try:
        text = csv_file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        fail(f"{csv_file} is not UTF-8 ({exc.reason} at byte {exc.start}); save it as CSV UTF-8", EXIT_PROBLEMS)
    products, errors = parse_csv(text)
    if errors:
        lines = [f"{csv_file}:{e.line}: {e.message}" for e in errors]
        emit({"imported": 0, "errors": [{"line": e.line, "error": e.message} for e in errors]}, as_json,
             [*lines, f"{len(errors)} invalid row(s); nothing imported"])
        raise SystemExit(EXIT_PROBLEMS)
    with ops_context(project, database_url, need_pubsub=False) as ctx:
        with ctx.database.transaction() as cur:
            cur.execute("SELECT 1 FROM tenants WHERE id = %s", (tenant,))
            known = cur.fetchone() is not None
        if not known:
            fail(f"no tenant {tenant!r} in the database", EXIT_USAGE)
        count = replace_catalog(ctx.database, tenant, products)
    emit({"tenant": tenant, "imported": count}, as_json, f"imported {count} product(s) for {tenant} "
         "(the previous catalog is replaced)")


@catalog.command("search")
@click.option("--tenant", required=True, help="Tenant id.")
@click.option("--limit", default=5, show_default=True, help="How many products (the assistant's catalog_products).")
@click.argument("text")
@target_options
@json_option
def search(tenant: str, limit: int, text: str, project: str | None, database_url: str | None,
           as_json: bool) -> None:
    """The products the assistant would be shown for a lead who wrote TEXT."""
    from shared.assistant.catalog import search_db

    with ops_context(project, database_url, need_pubsub=False) as ctx:
        found = search_db(ctx.database, tenant, [text], limit)
    emit([{"sku": p.sku, "name": p.name, "price": str(p.price), "unit": p.unit} for p in found], as_json,
         [p.line() for p in found] or ["no product matches"])
