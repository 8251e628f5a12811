"""The storage half of the edge rule: what the edge accepts, the writers store (real Postgres).

Hostile bodies (tests/hostile_inputs.py) go through each endpoint's real pipeline with valid
proof; every envelope it accepts is pushed, as Pub/Sub would, through the subscriber and the
real writers into Postgres. Each must leave a ledger row: processed, or visibly failed for a
reason of the data's meaning (an unknown lead), never because Postgres could not hold it.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloudevents.http import CloudEvent
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from shared.db import Database
from shared.envelope import Envelope
from shared.subscriber import handle
from shared.tenants import TenantDirectory
from shared.topology import load_topology
from shared.writers.ledger import process
from tests.conftest import query
from tests.hostile_inputs import ENDPOINT_IDS, ENDPOINTS, Endpoint, send_hostile, tenant_directory

pytestmark = pytest.mark.integration

# Failures a writer may rightly record for a well-formed envelope (the data names no lead it knows).
MEANINGFUL_FAILURES = ("LeadNotFound",)


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TenantDirectory]:
    with tenant_directory(Path(tmp_path_factory.mktemp("tenants"))) as found:
        yield found


@pytest.fixture(scope="module")
def tenants_db(database: Database) -> Database:
    with database.transaction() as cur:
        for tenant in ("acme", "globex"):
            cur.execute("INSERT INTO tenants (id, name) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
                        (tenant, tenant.title()))
    return database


def push(db: Database, envelope: Envelope, message_id: str) -> None:
    """The envelope as Pub/Sub pushes it to each subscriber function (Meta Lead Ads: the ledger only).

    leadgen_fetcher would call the Graph API; the ledger row it starts with is what this rule is about.
    """
    et = load_topology().event_type(envelope.event_type)
    if envelope.event_type == "leadgen_received":
        process(db, envelope, message_id, lambda cur, env: None)
        return
    for subscription, function in et.subscriptions.items():
        if function == "assistant":
            continue
        event = CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "id": message_id,
                            "source": f"//pubsub.googleapis.com/projects/p/topics/{et.topic}"},
                           {"message": {"data": base64.b64encode(envelope.to_bytes()).decode(),
                                        "messageId": f"{message_id}-{subscription}", "attributes": {}}})
        try:
            handle(event, function=function, db=db)
        except Exception as exc:  # Pub/Sub would retry; the ledger row is what must exist
            assert type(exc).__name__ in MEANINGFUL_FAILURES, f"{type(exc).__name__}: {exc}"


counter = iter(range(10**9))


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_what_the_edge_accepts_the_writers_store(directory: TenantDirectory, tenants_db: Database,
                                                 endpoint: Endpoint, data: st.DataObject) -> None:
    response, publisher = send_hostile(directory, endpoint, data)
    event(f"answer {response.status}")
    for envelope in publisher.published:
        push(tenants_db, envelope, f"m-{next(counter)}")
        rows = query(tenants_db, "SELECT status, last_error FROM events WHERE event_id = %s", envelope.event_id)
        assert rows, f"accepted ({response.status}) but no ledger row for {envelope.event_type}"
        for row in rows:
            assert row["status"] in ("processed", "duplicate") or str(row["last_error"]).startswith(
                MEANINGFUL_FAILURES), row


def test_a_stage_time_beyond_the_skew_bound_cannot_freeze_a_lead(clean_db: Database) -> None:
    """A legacy move stamped far in the future (before the edge bounded occurred_at) does not make
    every later move stale; a move really older than the lead's stage still is."""
    from datetime import UTC, datetime, timedelta

    from shared.envelope import build_envelope
    from shared.payloads import LeadCreated, StageChanged
    from shared.writers import writer_for

    def write(payload: LeadCreated | StageChanged, at: datetime, message_id: str) -> None:
        envelope = build_envelope(event_type="stage_changed" if isinstance(payload, StageChanged) else "lead_created",
                                  payload=payload, tenant="default", source="test", correlation_id=message_id)
        envelope = envelope.model_copy(update={"occurred_at": at})  # as an old, unbounded edge stamped it
        process(clean_db, envelope, message_id, writer_for(envelope.event_type))

    now = datetime.now(UTC)
    write(LeadCreated(phone="11922221111"), now - timedelta(hours=1), "m-1")
    lead = StageChanged(phone="11922221111", to_stage="triagem")
    write(lead, now + timedelta(days=3650), "m-2")  # frozen, before this fix
    write(lead.model_copy(update={"to_stage": "qualificado"}), now, "m-3")
    write(lead.model_copy(update={"to_stage": "perdido"}), now - timedelta(minutes=30), "m-4")  # really stale
    moves = query(clean_db, "SELECT to_stage, applied FROM pipeline_moves ORDER BY occurred_at DESC")
    assert moves == [{"to_stage": "triagem", "applied": True}, {"to_stage": "qualificado", "applied": True},
                     {"to_stage": "perdido", "applied": False}]
    assert query(clean_db, "SELECT stage FROM leads") == [{"stage": "qualificado"}]


# -- the last resort: a writer that cannot even record its failure still leaves a trace ----------------
def _failed_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event_status", None) == "failed"]


def _nul_envelope() -> Envelope:
    """An envelope Postgres refuses, made as the edge made them before it normalised strings."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    return Envelope.model_construct(event_id=str(uuid.uuid4()), event_type="lead_created", schema_version=1,
                                    correlation_id="c-nul", tenant="default", source="test", occurred_at=now,
                                    received_at=now, payload={"phone": "5511977770000", "name": "Jo\x00ao",
                                                              "source": "manual", "extra": {}})


def test_a_failure_postgres_cannot_record_as_sent_is_recorded_cleaned(clean_db: Database,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    from shared.writers import writer_for

    envelope = _nul_envelope()
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises, Pub/Sub must retry
        process(clean_db, envelope, "m-1", writer_for("lead_created"))
    [row] = query(clean_db, "SELECT status, attempts, last_error, envelope->'payload'->>'name' AS name "
                            "FROM events WHERE event_id = %s", envelope.event_id)
    assert (row["status"], row["attempts"], row["name"]) == ("failed", 1, "Jo\ufffdao")
    assert "cleaned for storage" in row["last_error"]
    assert [getattr(r, "event_id", None) for r in _failed_lines(caplog)] == [envelope.event_id]
    # ... and a replay of what the ledger kept (`ctower events replay`) can be written.
    stored = query(clean_db, "SELECT envelope::text AS e FROM events WHERE event_id = %s", envelope.event_id)[0]["e"]
    assert process(clean_db, Envelope.from_bytes(stored.encode()), "m-2", writer_for("lead_created")).value \
        == "processed"
    assert query(clean_db, "SELECT name FROM leads") == [{"name": "Jo\ufffdao"}]


def test_with_the_database_down_the_failure_is_a_counted_log_line(caplog: pytest.LogCaptureFixture) -> None:
    from ops.stack import free_port
    from shared.writers import writer_for

    down = Database.for_url(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing", size=1)
    envelope = _nul_envelope()
    try:
        with pytest.raises(Exception):  # noqa: B017
            process(down, envelope, "m-1", writer_for("lead_created"))
    finally:
        down.close()
    [line] = _failed_lines(caplog)
    assert (line.event_id, line.recorded, line.levelname) == (envelope.event_id, False, "ERROR")  # type: ignore[attr-defined]


def test_a_message_published_before_the_rule_is_normalised_and_written(clean_db: Database) -> None:
    envelope = _nul_envelope()
    legacy = envelope.model_dump_json().encode()  # NUL travels as \\u0000, as it did on the topic
    assert b"\\u0000" in legacy
    event = CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "id": "1",
                        "source": "//pubsub.googleapis.com/projects/p/topics/lead-created"},
                       {"message": {"data": base64.b64encode(legacy).decode(), "messageId": "1", "attributes": {}}})
    assert handle(event, function="leads_writer", db=clean_db).value == "processed"
    assert query(clean_db, "SELECT name FROM leads") == [{"name": "Jo\ufffdao"}]


def test_an_undecodable_message_is_logged_with_its_event_id(clean_db: Database,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    from shared.subscriber import PoisonMessage

    event = CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "id": "1",
                        "source": "//pubsub.googleapis.com/projects/p/topics/lead-created"},
                       {"message": {"data": base64.b64encode(b'{"x": ' + b"9" * 5000 + b"}").decode(),
                                    "messageId": "1", "attributes": {"event_id": "e-poison",
                                                                     "event_type": "lead_created"}}})
    with pytest.raises(PoisonMessage):
        handle(event, function="leads_writer", db=clean_db)
    [line] = _failed_lines(caplog)
    assert (line.event_id, line.event_type) == ("e-poison", "lead_created")  # type: ignore[attr-defined]
