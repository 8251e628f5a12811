"""`ctower assistant`: hand a conversation back to the assistant, try a tenant's assistant, print its schema."""

from __future__ import annotations

import getpass
import json
import sys
import uuid
from typing import TYPE_CHECKING, Any

import click

from ops.clikit import emit, open_database
from shared.assistant.prompt import Turn

if TYPE_CHECKING:
    from shared.assistant.config import TenantAssistant
    from shared.db import Database


@click.group()
def assistant() -> None:
    """The WhatsApp assistant: handback after a handoff, the simulator, the output schema."""


@assistant.command()
@click.option("--tenant", required=True, help="Tenant id.")
@click.option("--phone", required=True, help="The lead's phone (any format).")
@click.option("--database-url", envvar="DATABASE_URL", help="Postgres URL (default: the local stack's).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def handback(tenant: str, phone: str, database_url: str | None, as_json: bool) -> None:
    """Give the lead's conversation back to the assistant (exit 1 if there is none).

    Recorded in `handoffs` (reason operator, with who ran it and a correlation id).
    """
    from shared.assistant import handoff
    from shared.phones import InvalidPhone, normalize_phone

    try:
        normalized = normalize_phone(phone)
    except InvalidPhone as exc:
        click.echo(f"error: not a phone: {exc}", err=True)
        sys.exit(2)
    database = open_database(database_url)
    correlation_id = str(uuid.uuid4())
    try:
        with database.transaction() as cur:
            cur.execute("SELECT c.id, c.lead_id, c.handled_by FROM conversations c JOIN leads l ON l.id = c.lead_id "
                        "WHERE c.tenant_id = %s AND l.tenant_id = %s AND l.phone = %s", (tenant, tenant, normalized))
            rows = cur.fetchall()
            switched = [str(r[0]) for r in rows if handoff.switch(
                cur, tenant=tenant, conversation_id=str(r[0]), lead_id=str(r[1]), to="assistant", reason="operator",
                correlation_id=correlation_id, actor=getpass.getuser())]
    finally:
        database.close()
    if not rows:
        click.echo(f"error: no conversation with that phone in tenant {tenant}", err=True)
        sys.exit(1)
    result = {"tenant": tenant, "conversations": [str(r[0]) for r in rows], "handed_back": switched,
              "correlation_id": correlation_id}
    emit(result, as_json, [f"handed back to the assistant: {len(switched)} conversation(s) "
                           f"(correlation_id {correlation_id})" if switched
                           else "already with the assistant; nothing changed"])


@assistant.command()
@click.option("--tenant", default="default", show_default=True, help="Tenant id (its files under "
              "shared/assistant/tenants/, or ASSISTANT_TENANTS_DIR).")
def schema(tenant: str) -> None:
    """Print the JSON schema of the tenant's structured output (what the model must return)."""
    from shared.assistant.config import get_tenant
    from shared.assistant.schema import json_schema

    click.echo(json.dumps(json_schema(get_tenant(tenant).settings), indent=2, ensure_ascii=False))


@assistant.command()
@click.option("--tenant", default="default", show_default=True, help="Tenant id.")
@click.option("--database-url", envvar="CT_SIMULATOR_DATABASE_URL", metavar="URL",
              help="Read the tenant's product catalog from this database (without it: no catalog).")
def simulate(tenant: str, database_url: str | None) -> None:
    """Chat with the tenant's assistant in the terminal, before going live.

    The same decision code and the real OpenAI client as in production (OPENAI_BASE_URL,
    OPENAI_API_KEY); nothing is written or sent. With --database-url the catalog products
    that match the conversation are shown to the model, and listed. Type /sair (or Ctrl-D) to stop.
    """
    from shared.assistant.config import get_tenant
    from shared.db import Database

    config = get_tenant(tenant)
    database = Database.for_url(database_url, size=1) if database_url else None
    click.echo(f"[simulador] tenant {tenant} ({config.folder}), modelo {config.settings.model}. /sair para terminar.")
    try:
        _chat(config, tenant, database)
    finally:
        if database is not None:
            database.close()


def _chat(config: TenantAssistant, tenant: str, database: Database | None) -> None:
    """The simulator's loop: read the lead's line, run one simulated turn, print it (and the catalog products used)."""
    from shared.assistant.catalog import search_db
    from shared.assistant.context import lead_texts
    from shared.assistant.llm import get_model
    from shared.assistant.simulator import simulate

    history: list[Turn] = []
    known: dict[str, Any] = {}
    while True:
        try:
            text = input("lead> ")
        except EOFError:
            break
        if text.strip() in ("/sair", "/quit"):
            break
        if not text.strip():
            continue
        asked = [*history, Turn("lead", text)]
        products = (search_db(database, tenant, lead_texts(asked), config.settings.catalog_products)
                    if database else [])
        turn = simulate(config, history, known, text, get_model(), products)
        history, known = turn.turns, turn.known
        click.echo(f"assistente> {history[-1].text}")
        if turn.unavailable:
            click.echo(f"[{turn.unavailable}]")
        if turn.products:
            click.echo("[produtos do catálogo usados:\n" + "\n".join(p.line() for p in turn.products) + "]")
        for note in turn.notes:
            click.echo(f"[{note}]")
        if known:
            click.echo(f"[fatos: {json.dumps(known, ensure_ascii=False)}]")
        if turn.hands_off:
            break
