"""The writers' SQL functions (sql/030): one round trip, the callers' own privileges, refusals as exceptions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pg8000.dbapi
import pytest

from shared.db import Database
from shared.envelope import Envelope, build_envelope
from shared.payloads import HandoffRequested, LeadCreated, LeadgenReceived, MessageReceived, NoteAdded, Payload
from shared.secrets import reset_store
from shared.tenants import reset_directory
from shared.writers import writer_for
from shared.writers.calls import ConversationNotFound
from shared.writers.ledger import Result, process
from tests.conftest import query
from tests.fixtures import load
from tests.standins import GraphStandIn
from tests.traffic import tenants

pytestmark = pytest.mark.integration

# What a writer's database user needs on the tables (and their sequences) its functions write.
WRITER_GRANTS = (
    "GRANT SELECT, INSERT, UPDATE ON events, leads, conversations, messages, pipeline_moves, proposals, obras, "
    "handoffs, lead_notes, message_statuses, outbound_messages TO {role}",
    "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}",
)


def env(event_type: str, payload: Payload, source_id: str) -> Envelope:
    return build_envelope(event_type=event_type, payload=payload, tenant="default", source="test",
                          correlation_id=f"c-{source_id}", source_id=source_id, occurred_at=datetime.now(UTC))


@contextmanager
def login(database_url: str, database: Database, grants: tuple[str, ...] = (), member_of: str | None = None
          ) -> Iterator[Database]:
    """A pool on a new login role with only `grants` (and `member_of`'s), dropped afterwards."""
    role = f"writer_{uuid.uuid4().hex[:8]}"
    with database.transaction() as cur:
        cur.execute(f'CREATE ROLE "{role}" LOGIN' + (f" IN ROLE {member_of}" if member_of else ""))
        cur.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        for grant in grants:
            cur.execute(grant.format(role=f'"{role}"'))
    parsed = urlparse(database_url)
    pool = Database.for_url(urlunparse(parsed._replace(netloc=role + "@" + parsed.netloc.rsplit("@", 1)[-1])), size=1)
    try:
        yield pool
    finally:
        pool.close()
        with database.transaction() as cur:
            cur.execute(f'DROP OWNED BY "{role}"')
            cur.execute(f'DROP ROLE "{role}"')


def test_a_role_with_only_table_grants_runs_every_write_and_the_functions_add_no_privilege(
        database_url: str, clean_db: Database) -> None:
    assert query(clean_db, "SELECT proname FROM pg_proc WHERE proname LIKE 'ct\\_%%' AND prosecdef") == []
    message = MessageReceived(provider="evolution", provider_message_id="F1", phone="5511977770000",
                              chat_id="5511977770000@s.whatsapp.net", display_name="Lia", text="oi")
    with login(database_url, clean_db, WRITER_GRANTS) as writer:
        assert process(writer, env("message_received", message, "f-1"), "m-1",
                       writer_for("message_received")) == Result.PROCESSED
        lead = str(query(clean_db, "SELECT id FROM leads")[0]["id"])
        note = env("note_added", NoteAdded(lead_id=lead, body="Ligar amanhã", author="ana@example.com"), "f-2")
        assert process(writer, note, "m-2", writer_for("note_added")) == Result.PROCESSED
        assert process(writer, note, "m-3", writer_for("note_added")) == Result.DUPLICATE
    assert query(clean_db, "SELECT body, correlation_id FROM lead_notes") == [
        {"body": "Ligar amanhã", "correlation_id": "c-f-2"}]
    with login(database_url, clean_db, member_of="ct_console") as console:  # reads these tables, writes none
        lead_created = env("lead_created", LeadCreated(phone="5511977771111"), "f-4")
        with pytest.raises(pg8000.dbapi.DatabaseError, match="permission denied for table events"):
            process(console, lead_created, "m-4", writer_for("lead_created"))
        with pytest.raises(pg8000.dbapi.DatabaseError, match="permission denied for table conversations"), \
                console.transaction() as cur:
            cur.execute("SELECT ct_switch('default', %s, %s, 'human', 'operator', 'c', NULL, NULL, 'x')",
                        (str(uuid.uuid4()), lead))
    assert query(clean_db, "SELECT count(*) AS n FROM leads") == [{"n": 1}]


def test_a_handoff_for_a_conversation_not_in_the_tenant_is_refused_recorded_and_raised(clean_db: Database) -> None:
    handoff = env("handoff_requested", HandoffRequested(conversation_id=uuid.uuid4(), lead_id=uuid.uuid4(),
                                                        to="human", actor="ana@example.com"), "h-1")
    with pytest.raises(ConversationNotFound, match="is not in tenant default"):
        process(clean_db, handoff, "m-1", writer_for("handoff_requested"))
    [row] = query(clean_db, "SELECT status, attempts, last_error, correlation_id FROM events")
    assert (row["status"], row["attempts"], row["correlation_id"]) == ("failed", 1, "c-h-1")
    assert row["last_error"].startswith("ConversationNotFound: conversation ")


def test_a_duplicate_delivery_runs_no_write(clean_db: Database) -> None:
    """The statement's CASE calls the write only when ct_ledger_enter says this delivery is the one to apply."""
    first = env("lead_created", LeadCreated(phone="5511977772222"), "d-1")
    assert process(clean_db, first, "m-1", writer_for("lead_created")) == Result.PROCESSED
    # The same event again, carrying what would fill the lead's blanks if its write ran.
    again = first.model_copy(update={"payload": {**first.payload, "email": "late@example.com", "name": "Late"},
                                     "correlation_id": "c-again"})
    assert process(clean_db, again, "m-2", writer_for("lead_created")) == Result.DUPLICATE
    assert query(clean_db, "SELECT email, name, last_correlation_id FROM leads") == [
        {"email": None, "name": None, "last_correlation_id": "c-d-1"}]


def test_a_redelivered_leadgen_is_a_duplicate_and_not_fetched_again(
        clean_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    graph = GraphStandIn()
    graph.tokens |= tenants.page_tokens(("default",))
    graph.leads["1234567890123456"] = load("meta_leadgen", "graph_lead")
    for name, value in {**tenants.configure(tmp_path, ("default",)), "META_GRAPH_BASE_URL": graph.url}.items():
        monkeypatch.setenv(name, value)
    reset_directory()
    reset_store()
    try:
        leadgen = env("leadgen_received", LeadgenReceived(leadgen_id="1234567890123456",
                                                           page_id=tenants.meta_page_id("default")), "g-1")
        assert process(clean_db, leadgen, "m-1", writer_for("leadgen_received")) == Result.PROCESSED
        assert process(clean_db, leadgen, "m-2", writer_for("leadgen_received")) == Result.DUPLICATE
    finally:
        reset_directory()
        reset_store()
        graph.close()
    assert len(graph.requests) == 1
    assert query(clean_db, "SELECT name, correlation_id FROM leads") == [
        {"name": "Beatriz Costa", "correlation_id": "c-g-1"}]
    assert [r["status"] for r in query(clean_db, "SELECT status FROM events ORDER BY id")] == ["processed", "duplicate"]
