"""The ledger and writers against a real Postgres: once-only, order-tolerant, all-or-nothing."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cloudevents.http import CloudEvent

from shared.db import Cursor, Database
from shared.envelope import Envelope, build_envelope
from shared.migrations import MigrationError, discover, migrate, status
from shared.payloads import LeadCreated, MessageReceived, ObraCreated, ProposalSent, StageChanged, Won
from shared.subscriber import PoisonMessage, handle
from shared.writers import writer_for
from shared.writers.calls import LeadNotFound
from shared.writers.ledger import Result, process
from tests.conftest import query

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def env(event_type: str, payload, *, cid: str = "c-1", source_id: str | None = None,
        at: datetime = NOW, tenant: str = "default") -> Envelope:
    return build_envelope(event_type=event_type, payload=payload, tenant=tenant, source="test", correlation_id=cid,
                          source_id=source_id, occurred_at=at)


def write(db: Database, envelope: Envelope, message_id: str = "m-1") -> Result:
    return process(db, envelope, message_id, writer_for(envelope.event_type))


def lead_id(db: Database, phone: str = "5511999998888") -> str:
    return str(query(db, "SELECT id FROM leads WHERE phone = %s", phone)[0]["id"])


def test_a_redelivered_event_is_written_once_and_recorded_as_duplicate(clean_db: Database) -> None:
    lead = env("lead_created", LeadCreated(phone="11999998888", name="Ana"), source_id="f-1")
    assert write(clean_db, lead, "m-1") == Result.PROCESSED
    retried_webhook = lead.model_copy(update={"correlation_id": "c-2"})
    assert write(clean_db, retried_webhook, "m-2") == Result.DUPLICATE
    assert write(clean_db, retried_webhook, "m-2") == Result.DUPLICATE  # Pub/Sub redelivering the same message
    assert query(clean_db, "SELECT count(*) AS n FROM leads") == [{"n": 1}]
    rows = query(clean_db, "SELECT status, correlation_id, message_id FROM events ORDER BY id")
    assert rows == [{"status": "processed", "correlation_id": "c-1", "message_id": "m-1"},
                    {"status": "duplicate", "correlation_id": "c-2", "message_id": "m-2"}]


def test_a_message_from_an_unknown_phone_creates_the_lead_and_conversation(clean_db: Database) -> None:
    message = MessageReceived(provider="evolution", provider_message_id="W1", phone="5511988887777",
                              chat_id="5511988887777@s.whatsapp.net", display_name="Bia", text="oi")
    write(clean_db, env("message_received", message, cid="c-msg"))
    lead = query(clean_db, "SELECT name, source, correlation_id FROM leads")[0]
    assert lead == {"name": "Bia", "source": "evolution", "correlation_id": "c-msg"}
    convo = query(clean_db, "SELECT provider, chat_id, handled_by, correlation_id FROM conversations")[0]
    assert convo == {"provider": "evolution", "chat_id": "5511988887777@s.whatsapp.net", "handled_by": "assistant",
                     "correlation_id": "c-msg"}
    assert query(clean_db, "SELECT body, direction, correlation_id FROM messages") == [
        {"body": "oi", "direction": "inbound", "correlation_id": "c-msg"}]


def test_a_later_form_fills_blanks_but_never_overwrites(clean_db: Database) -> None:
    write(clean_db, env("lead_created", LeadCreated(phone="11999998888", name="Ana", extra={"a": 1})))
    write(clean_db, env("lead_created", LeadCreated(phone="5511999998888", name="Outro nome", email="ana@x.com",
                                                    location="Campinas", extra={"a": 2, "b": 3}), cid="c-2"))
    lead = query(clean_db, "SELECT name, email, location, extra, correlation_id, last_correlation_id FROM leads")
    assert lead == [{"name": "Ana", "email": "ana@x.com", "location": "Campinas", "extra": {"a": 1, "b": 3},
                     "correlation_id": "c-1", "last_correlation_id": "c-2"}]


def test_a_stale_stage_change_is_kept_in_history_but_does_not_move_the_lead_back(clean_db: Database) -> None:
    write(clean_db, env("lead_created", LeadCreated(phone="11999998888"), at=NOW - timedelta(hours=2)))
    lid = lead_id(clean_db)
    write(clean_db, env("stage_changed", StageChanged(lead_id=lid, to_stage="proposta"), cid="new"))
    write(clean_db, env("stage_changed", StageChanged(lead_id=lid, to_stage="triagem"), cid="old",
                        at=NOW - timedelta(hours=1)))
    assert query(clean_db, "SELECT stage FROM leads") == [{"stage": "proposta"}]
    moves = query(clean_db, "SELECT from_stage, to_stage, applied, correlation_id FROM pipeline_moves ORDER BY id")
    assert moves == [{"from_stage": "novo", "to_stage": "proposta", "applied": True, "correlation_id": "new"},
                     {"from_stage": "proposta", "to_stage": "triagem", "applied": False, "correlation_id": "old"}]


def test_proposal_won_and_obra_follow_the_lead(clean_db: Database) -> None:
    write(clean_db, env("lead_created", LeadCreated(phone="11999998888"), at=NOW - timedelta(days=3)))
    lid = lead_id(clean_db)
    write(clean_db, env("proposal_sent", ProposalSent(lead_id=lid, proposal_ref="P-1", amount="9800.00"),
                        cid="c-p", at=NOW - timedelta(days=2)))
    write(clean_db, env("won", Won(lead_id=lid, proposal_ref="P-1"), cid="c-w", at=NOW - timedelta(days=1)))
    write(clean_db, env("obra_created", ObraCreated(phone="11999998888", obra_ref="OB-1", title="Piso sala",
                                                    proposal_ref="P-1"), cid="c-o"))
    assert query(clean_db, "SELECT stage FROM leads") == [{"stage": "ganho"}]
    proposal = query(clean_db, "SELECT id, status, amount, correlation_id FROM proposals")[0]
    assert (proposal["status"], str(proposal["amount"]), proposal["correlation_id"]) == ("won", "9800.00", "c-w")
    obra = query(clean_db, "SELECT proposal_id, title, status, correlation_id FROM obras")[0]
    assert obra == {"proposal_id": proposal["id"], "title": "Piso sala", "status": "planejada", "correlation_id": "c-o"}
    assert [m["to_stage"] for m in query(clean_db, "SELECT to_stage FROM pipeline_moves ORDER BY id")] == [
        "proposta", "ganho"]


@pytest.mark.parametrize("first_fails", [False, True])
def test_two_concurrent_deliveries_of_one_event_write_it_once(clean_db: Database, first_fails: bool) -> None:
    """The second delivery waits on the first's uncommitted ledger row, then follows its outcome."""
    lead = env("lead_created", LeadCreated(phone="11999998888", name="Ana"), source_id="f-1")
    inside, release = threading.Event(), threading.Event()

    def slow_apply(cur: Cursor, envelope: Envelope) -> None:
        writer_for("lead_created")(cur, envelope)
        inside.set()
        release.wait(10)
        if first_fails:
            raise RuntimeError("the first delivery's write failed")

    outcomes: dict[str, object] = {}

    def first() -> None:
        try:
            outcomes["m-1"] = process(clean_db, lead, "m-1", slow_apply)
        except RuntimeError as exc:
            outcomes["m-1"] = str(exc)

    worker = threading.Thread(target=first)
    worker.start()
    assert inside.wait(10)
    second = threading.Thread(target=lambda: outcomes.update({"m-2": write(clean_db, lead, "m-2")}))
    second.start()
    time.sleep(0.3)  # the second delivery is now blocked on the first's row
    assert "m-2" not in outcomes
    release.set()
    worker.join(10)
    second.join(10)
    assert query(clean_db, "SELECT count(*) AS n FROM leads") == [{"n": 1}]
    rows = query(clean_db, "SELECT status, message_id, attempts FROM events ORDER BY id")
    if first_fails:
        assert outcomes == {"m-1": "the first delivery's write failed", "m-2": Result.PROCESSED}
        # the first delivery's failure, recorded after the second one committed, leaves its row alone
        assert [(r["status"], r["message_id"]) for r in rows] == [("processed", "m-2")]
    else:
        assert outcomes == {"m-1": Result.PROCESSED, "m-2": Result.DUPLICATE}
        assert [(r["status"], r["message_id"], r["attempts"]) for r in rows] == [
            ("processed", "m-1", 1), ("duplicate", "m-2", 1)]


def test_a_failing_write_is_rolled_back_whole_counted_and_succeeds_once_fixed(
        clean_db: Database, caplog: pytest.LogCaptureFixture) -> None:
    missing = uuid.uuid4()
    change = env("stage_changed", StageChanged(lead_id=missing, to_stage="qualificado"))
    for attempt in (1, 2):
        with pytest.raises(LeadNotFound):
            write(clean_db, change, f"m-{attempt}")
        row = query(clean_db, "SELECT status, attempts, last_error FROM events")[0]
        assert (row["status"], row["attempts"]) == ("failed", attempt)
        assert row["last_error"].startswith("LeadNotFound")
    # The failed-events alert counts `event_status: failed` once per event, not once per retry.
    statuses = [getattr(r, "event_status", None) for r in caplog.records if r.name == "shared.writers.ledger"]
    assert statuses == ["failed", "failed_again"]
    with clean_db.transaction() as cur:
        cur.execute("INSERT INTO leads (id, tenant_id, phone, source, correlation_id, last_correlation_id, "
                    "stage_changed_at) VALUES (%s, 'default', '5511900000000', 'ops', 'fix', 'fix', %s)",
                    (str(missing), NOW - timedelta(days=1)))
    assert write(clean_db, change, "m-3") == Result.PROCESSED
    assert query(clean_db, "SELECT status, attempts, last_error FROM events") == [
        {"status": "processed", "attempts": 3, "last_error": None}]


def test_nothing_partial_survives_a_failure_mid_write(clean_db: Database) -> None:
    def half_then_fail(cur, envelope: Envelope) -> None:
        writer_for("lead_created")(cur, envelope)
        raise RuntimeError("connection lost mid-write")

    lead = env("lead_created", LeadCreated(phone="11999998888"))
    with pytest.raises(RuntimeError):
        process(clean_db, lead, "m-1", half_then_fail)
    assert query(clean_db, "SELECT count(*) AS n FROM leads") == [{"n": 0}]
    assert query(clean_db, "SELECT status FROM events") == [{"status": "failed"}]


def _cloud_event(data: bytes, topic: str = "lead-created") -> CloudEvent:
    return CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "id": "41",
                       "source": f"//pubsub.googleapis.com/projects/p/topics/{topic}"},
                      {"message": {"data": base64.b64encode(data).decode(), "messageId": "41", "attributes": {}}})


def test_the_subscriber_takes_a_pushed_cloud_event(clean_db: Database) -> None:
    lead = env("lead_created", LeadCreated(phone="11999998888"))
    assert handle(_cloud_event(lead.to_bytes()), function="leads_writer", db=clean_db) == Result.PROCESSED
    assert query(clean_db, "SELECT message_id FROM events") == [{"message_id": "41"}]


def test_poison_messages_raise_so_they_are_dead_lettered(clean_db: Database) -> None:
    with pytest.raises(PoisonMessage):
        handle(_cloud_event(b"not an envelope"), function="leads_writer", db=clean_db)
    wrong_function = env("won", Won(phone="11999998888"))
    with pytest.raises(PoisonMessage, match="does not handle"):
        handle(_cloud_event(wrong_function.to_bytes()), function="leads_writer", db=clean_db)
    assert query(clean_db, "SELECT count(*) AS n FROM events") == [{"n": 0}]


def test_migrations_are_idempotent_and_refuse_a_changed_file(database: Database, tmp_path: Path) -> None:
    assert migrate(database) == []
    assert all(s.applied and not s.changed for s in status(database))
    changed = tmp_path / "sql"
    changed.mkdir()
    for migration in discover():
        (changed / migration.name).write_text(migration.sql + "\n-- edited after it was applied\n")
    assert any(s.changed for s in status(database, changed))
    with pytest.raises(MigrationError, match="has changed"):
        migrate(database, changed)
