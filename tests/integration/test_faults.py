"""Fault drills: what the pipeline survives, with every count asserted exactly.

Short form in `make test`; full form in `make soak` (CT_DRILL_SCALE=full: a 60 s Postgres
outage and more messages). Load goes to loopback through tests.traffic.load, bounded in count and
time; every process a drill starts is stopped in a finally. The drills take no step the
README does not give: the local stack restarts what dies, and its pusher retries every
failed delivery with backoff until it is written or dead-lettered.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from google.cloud import pubsub_v1

from ops.localdb import migrated_embedded, restart_embedded, stop_embedded
from ops.provision import DeliveryPolicy
from ops.stack import ROOT, Stack, free_port
from shared.db import Database
from shared.topology import load_topology
from tests.conftest import RunningStack, query, start_stack, stop_stack, wait_for
from tests.http import send
from tests.traffic import load
from tests.traffic.sources import Webhook, evolution_whatsapp, lead_form

pytestmark = pytest.mark.integration

FULL = os.environ.get("CT_DRILL_SCALE", "short").lower() == "full"
OUTAGE_SECONDS = 60 if FULL else 15
PER_PHASE = 100 if FULL else 30
SEND_SECONDS = 5.0  # the kill drills' load, paced: the kill lands while it still arrives


def _requests(stack: RunningStack, webhooks: list[Webhook]) -> list[load.Request]:
    return [load.Request(stack.url(w.function) + w.path, json.dumps(w.body).encode(), dict(w.headers))
            for w in webhooks]


def _report(drill: str, **facts: object) -> None:
    """With CT_DRILL_REPORT set (`make soak`), append what a passed drill measured, for docs/soak.md."""
    path = os.environ.get("CT_DRILL_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"drill": drill, "scale": "full" if FULL else "short", **facts}) + "\n")


def _send_all(stack: RunningStack, webhooks: list[Webhook], seconds: float | None = None) -> load.LoadResult:
    pace = len(webhooks) / seconds if seconds else None
    return load.run(_requests(stack, webhooks), concurrency=4, max_seconds=(seconds or 0) + 60,
                    pace_per_second=pace)


def _settle(db: Database, processed: int, timeout: float) -> dict[str, int]:
    """Wait (bounded) until `processed` events are processed; fail with the counts seen last."""
    deadline = time.monotonic() + timeout
    counts = _counts(db)
    while counts["processed"] < processed and time.monotonic() < deadline:
        time.sleep(0.5)
        counts = _counts(db)
    pending = query(db, "SELECT status, left(last_error, 300) AS error, count(*) AS n FROM events "
                        "WHERE status <> 'processed' GROUP BY 1, 2")
    assert counts["processed"] == processed, f"not drained in {timeout} s: {counts}, {pending}"
    return counts


def _counts(db: Database) -> dict[str, int]:
    ingest = "event_type IN ('message_received', 'lead_created')"  # what the drills send (not assistant replies)
    row = query(db, f"SELECT (SELECT count(*) FROM events WHERE {ingest}) AS events, "  # noqa: S608
                    f"(SELECT count(*) FROM events WHERE {ingest} AND status = 'processed') AS processed, "
                    f"(SELECT count(*) FROM events WHERE {ingest} AND status = 'duplicate') AS duplicates, "
                    "(SELECT count(*) FROM leads) AS leads, (SELECT count(*) FROM conversations) AS conversations, "
                    "(SELECT count(*) FROM messages) AS messages")[0]
    return {k: int(v) for k, v in row.items()}


def _dead_letters(project: str, subscription: str) -> list[pubsub_v1.types.ReceivedMessage]:
    """A peek: pull what waits on a dead-letter subscription, then release it (nack) as it was."""
    subscriber = pubsub_v1.SubscriberClient()
    try:
        path = subscriber.subscription_path(project, subscription)
        found = list(subscriber.pull(request={"subscription": path, "max_messages": 100, "return_immediately": True},
                                     timeout=10).received_messages)
        if found:
            subscriber.modify_ack_deadline(subscription=path, ack_ids=[m.ack_id for m in found], ack_deadline_seconds=0)
        return found
    finally:
        subscriber.close()


def _redelivered(db: Database) -> int:
    """`duplicate` rows that are the same Pub/Sub message as the processed one (a redelivery, not a resend)."""
    return int(query(db, "SELECT count(*) AS n FROM events d JOIN events p ON p.event_id = d.event_id "
                         "AND p.status = 'processed' AND p.message_id = d.message_id WHERE d.status = 'duplicate'"
                     )[0]["n"])


# -- (1) Postgres stopped in the middle of the load ---------------------------------------
@pytest.fixture
def own_postgres() -> Iterator[tuple[object, str]]:
    # Not under pytest's basetemp: a pytest session starting meanwhile (another run on this machine) makes
    # `pytest-of-<user>` 0700 again, and Postgres, run as its own user under root, could not start again.
    with tempfile.TemporaryDirectory(prefix="ct-drill-pg-") as data_dir, \
            migrated_embedded(Path(data_dir) / "pg", "ct_drill") as (server, url):
        yield server, url


@pytest.mark.timeout(900 if FULL else 300)
def test_postgres_outage_costs_latency_not_leads(own_postgres: tuple[object, str], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    server, url = own_postgres
    # Deliveries keep failing for the whole outage: the local defaults' retry budget must outlast it (in
    # the cloud: terraform variable max_delivery_attempts with retry_maximum_backoff).
    (tmp_path / "stack").mkdir()
    local = DeliveryPolicy()
    stack = start_stack(tmp_path / "stack", url, {
        "CT_MAX_DELIVERY_ATTEMPTS": str(local.max_delivery_attempts), "ASSISTANT_ENABLED": "false",
        "CT_MIN_BACKOFF_SECONDS": str(local.min_backoff_seconds),
        "CT_MAX_BACKOFF_SECONDS": str(local.max_backoff_seconds)})
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", stack.description["pubsub_emulator_host"])  # this drill's emulator
    db = Database.for_url(url, size=1)
    try:
        before = _send_all(stack, [evolution_whatsapp(i, "default") for i in range(PER_PHASE)])
        stop_embedded(server)
        try:
            during = _send_all(stack, [evolution_whatsapp(i, "default") for i in range(PER_PHASE, 2 * PER_PHASE)],
                               seconds=OUTAGE_SECONDS * 0.8)
            time.sleep(max(0.0, OUTAGE_SECONDS - during.elapsed))
        finally:
            restart_embedded(server)
        after = _send_all(stack, [evolution_whatsapp(i, "default") for i in range(2 * PER_PHASE, 3 * PER_PHASE)])
        for phase in (before, during, after):
            assert phase.statuses() == {202: PER_PHASE}
        total = 3 * PER_PHASE
        counts = _settle(db, total, timeout=float(os.environ.get("CT_DRILL_DRAIN_SECONDS", 240)))
        time.sleep(3)  # a late redelivery would add a row here
        redelivered = _redelivered(db)
        assert _counts(db) == counts == {"events": total + redelivered, "processed": total,
                                         "duplicates": redelivered, "leads": total, "conversations": total,
                                         "messages": total}
        assert _dead_letters(stack.project, "message-received-dlq-ops") == []
        _report("Postgres stopped under load (local retry defaults)", outage_s=OUTAGE_SECONDS,
                attempts=local.max_delivery_attempts,
                backoff_s=f"{local.min_backoff_seconds}-{local.max_backoff_seconds}",
                answers={phase: str(r.statuses()) for phase, r in
                         (("before", before), ("during", during), ("after", after))},
                counts=counts, redeliveries=redelivered, dead_letters=0)
    finally:
        db.close()
        stop_stack(stack)


# -- (2) a writer process killed mid-stream --------------------------------------------------
def _function_server(port: int) -> psutil.Process:
    """The functions-framework process serving `port` (its gunicorn master).

    Its workers are forks with the same command line, and pids wrap (pid_max is 32768 here, and
    a full test run goes round): the master is the match whose parent is not a match.
    """
    matches = {}
    for proc in psutil.process_iter(["cmdline", "ppid"]):
        cmd = proc.info["cmdline"] or []
        if "functions_framework" in cmd and "--port" in cmd and cmd[cmd.index("--port") + 1] == str(port):
            matches[proc.pid] = proc
    for proc in matches.values():
        if proc.info["ppid"] not in matches:
            return proc
    raise AssertionError(f"no function server on port {port}")


def _gunicorn_worker(port: int, other_than: int | None = None) -> psutil.Process:
    """The gunicorn worker serving `port` (a child of the functions-framework master), once there is one.

    Polled, not looked up once: a master just (re)started boots its worker a moment later, and a
    killed worker is replaced after gunicorn notices. `other_than`: a worker that is not this pid.
    """
    def worker() -> psutil.Process | None:
        try:
            children = _function_server(port).children()
        except (AssertionError, psutil.Error):
            return None
        return next((c for c in children if c.pid != other_than and c.is_running()), None)

    found: psutil.Process = wait_for(worker, timeout=60, interval=0.2)
    return found


def _kill_mid_stream(stack: RunningStack, db: Database, first_lead: int, kill: Callable[[], None]) -> tuple[int, int]:
    """Send 5 phases of lead forms paced over SEND_SECONDS, `kill` once a tenth is written, while the rest
    are still arriving (a writer at one statement per envelope drains an unpaced burst before any kill);
    (sent, processed when killed)."""
    total = 5 * PER_PHASE
    with ThreadPoolExecutor(max_workers=1) as sender:
        sending = sender.submit(_send_all, stack, [lead_form(first_lead + i, "default") for i in range(total)],
                                SEND_SECONDS)
        wait_for(lambda: _counts(db)["processed"] >= total // 10, timeout=60, interval=0.05)
        kill()
        at_kill = _counts(db)["processed"]
        result = sending.result()
    assert result.statuses() == {202: total}
    assert at_kill < total, "the kill must land while envelopes are still flowing"
    return total, at_kill


def _written_once(db: Database, total: int, counts: dict[str, int]) -> int:
    """Assert every lead is written once; a delivery cut after its commit comes back as the same Pub/Sub
    message, so at most a `duplicate` row for that very message id, never a second lead. The redeliveries."""
    redelivered = _redelivered(db)
    assert counts == {"events": total + redelivered, "processed": total, "duplicates": redelivered,
                      "leads": total, "conversations": 0, "messages": 0}
    return redelivered


def test_a_writer_killed_mid_stream_loses_nothing_and_writes_nothing_twice(stack: RunningStack, clean_db) -> None:
    port = int(stack.url("leads_writer").rsplit(":", 1)[1])
    worker = _gunicorn_worker(port)
    total, at_kill = _kill_mid_stream(stack, clean_db, 10_000, lambda: os.kill(worker.pid, signal.SIGKILL))
    worker.wait(timeout=10)
    counts = _settle(clean_db, total, timeout=120)
    _gunicorn_worker(port, other_than=worker.pid)  # gunicorn replaced the worker
    time.sleep(3)
    assert _counts(clean_db) == counts
    redelivered = _written_once(clean_db, total, counts)
    assert query(clean_db, "SELECT count(*) AS n FROM events WHERE status NOT IN ('processed', 'duplicate')"
                 ) == [{"n": 0}]
    _report("writer killed mid-stream", sent=total, processed_when_killed=at_kill, counts=counts,
            redeliveries=redelivered)


@pytest.fixture(scope="module")
def supervised_stack(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[RunningStack]:
    """A stack of its own, as `make dev` runs it: the server killed here is its own, not the session's."""
    running = start_stack(tmp_path_factory.mktemp("supervised-stack"), database_url, {"ASSISTANT_ENABLED": "false"})
    yield running
    stop_stack(running)


def test_a_function_server_killed_under_load_is_restarted_and_loses_nothing(supervised_stack: RunningStack,
                                                                            clean_db) -> None:
    """The whole server (master and workers) of a writer dies mid-load: the stack restarts it, Pub/Sub
    held its messages, and every webhook answered 202 is written once."""
    stack = supervised_stack
    port = int(stack.url("leads_writer").rsplit(":", 1)[1])
    server = _function_server(port)
    # the server and its workers, as an OOM kill would
    total, at_kill = _kill_mid_stream(stack, clean_db, 30_000, lambda: os.killpg(server.pid, signal.SIGKILL))

    def replaced() -> psutil.Process | None:
        try:
            found = _function_server(port)
        except AssertionError:
            return None
        return found if found.pid != server.pid else None

    restarted = wait_for(replaced, timeout=60, interval=0.5)
    counts = _settle(clean_db, total, timeout=180)
    time.sleep(3)
    assert _counts(clean_db) == counts
    redelivered = _written_once(clean_db, total, counts)
    assert "leads_writer exited" in stack.log()
    _report("function server killed under load", sent=total, processed_when_killed=at_kill, counts=counts,
            redeliveries=redelivered, restarted_pid_changed=restarted.pid != server.pid)


# -- (3) the emulator unreachable at the edge ------------------------------------------------
def test_edge_without_pubsub_answers_503_and_leaves_nothing_behind(stack: RunningStack, clean_db,
                                                                   tmp_path: Path) -> None:
    webhooks = [evolution_whatsapp(20_000 + i, "default") for i in range(3)]
    env = {"PUBSUB_EMULATOR_HOST": f"127.0.0.1:{free_port()}", "PUBLISH_TIMEOUT_SECONDS": "1",
           "GOOGLE_CLOUD_PROJECT": stack.project, "TENANTS_FILE": str(Path(stack.env["CT_LOCAL_DIR"]) / "tenants.json"),
           "THREADS": "4"}
    with (tmp_path / "edge.log").open("w") as log:
        down = Stack(out=log)
        try:
            edge_url = down.serve("whatsapp-no-pubsub", "whatsapp", ROOT / "main.py", free_port(), env)
            health_url = down.serve("health-no-pubsub", "health", ROOT / "main.py", free_port(), env)
            refused = load.run([load.Request(edge_url + w.path, json.dumps(w.body).encode(),
                                             dict(w.headers)) for w in webhooks], concurrency=3, max_seconds=60)
            health = send("GET", health_url + "/?detail=true")
        finally:
            down.stop()
    assert refused.statuses() == {503: 3}
    assert all(a.retry_after and int(a.retry_after) > 0 for a in refused.answers)
    assert {a.body["error"] for a in refused.answers} == {"publish_failed"}
    assert health.status == 503 and health.json()["status"] == "degraded"
    assert all(v != "ok" for v in health.json()["topics"].values())
    # The platform retries against a healthy edge: each event is written once, the refused attempts left nothing.
    retried = _send_all(stack, webhooks)
    assert retried.statuses() == {202: 3}
    counts = _settle(clean_db, 3, timeout=60)
    time.sleep(2)
    assert _counts(clean_db) == counts == {"events": 3, "processed": 3, "duplicates": 0, "leads": 3,
                                           "conversations": 3, "messages": 3}
    _report("Pub/Sub unreachable at the edge", refused=str(refused.statuses()), health=health.status,
            retried=str(retried.statuses()), counts=counts)


# -- (4) a poison message --------------------------------------------------------------------
def test_a_poison_message_is_dead_lettered_visible_and_redrivable(stack: RunningStack, clean_db) -> None:
    from ops.deadletters import RedriveOptions, Subscription, redrive
    from shared.publisher import PubSubPublisher

    marker = f"poison-{uuid.uuid4().hex[:8]}"
    body = b"this is not an envelope"
    publisher = pubsub_v1.PublisherClient()
    publisher.publish(publisher.topic_path(stack.project, "message-received"), body, drill=marker,
                      event_type="message_received").result(timeout=30)

    def ours() -> list[pubsub_v1.types.ReceivedMessage]:
        found = _dead_letters(stack.project, "message-received-dlq-ops")
        return [m for m in found if m.message.attributes.get("drill") == marker]

    dlq_type = load_topology().event_type("message_received")
    # The conversations writer rejects it; the session stack's assistant is switched off and acknowledges it.
    sources = ["message-received-conversations-writer"]
    letters = wait_for(lambda: (found := ours()) and len(found) >= len(sources) and found, timeout=90, interval=1)
    time.sleep(3)  # a second copy would show up here
    letters = ours()
    assert sorted(m.message.attributes["CloudPubSubDeadLetterSourceSubscription"] for m in letters) == sources
    for letter in letters:
        assert letter.message.data == body
        assert letter.message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == \
            stack.env["CT_MAX_DELIVERY_ATTEMPTS"]  # the stack's max attempts
    assert query(clean_db, "SELECT count(*) AS n FROM events") == [{"n": 0}]  # nothing half-written

    # Redrivable: the ops CLI's redrive puts it back on its topic, where (still poison) it is dead-lettered
    # again, now marked as redriven once.
    subscriber = pubsub_v1.SubscriberClient()
    try:
        report = redrive([(dlq_type, Subscription(subscriber, stack.project, dlq_type.dead_letter_subscription,
                                                  emulator=True))],
                         PubSubPublisher(stack.project, timeout_seconds=30), load_topology(), RedriveOptions())
        assert report.failed == 0 and report.moved >= len(sources)

        def redriven() -> list[pubsub_v1.types.ReceivedMessage]:
            return [m for m in ours() if m.message.attributes.get("redrive_count") == "1"]

        again = wait_for(lambda: (found := redriven()) and len(found) >= len(sources) and found,
                         timeout=90, interval=1)
        time.sleep(3)
        again = redriven()
        assert len(again) == len(sources) and all(m.message.data == body for m in again)
        path = subscriber.subscription_path(stack.project, dlq_type.dead_letter_subscription)
        settled = subscriber.pull(request={"subscription": path, "max_messages": 100, "return_immediately": True},
                                  timeout=10).received_messages
        subscriber.acknowledge(subscription=path, ack_ids=[m.ack_id for m in settled
                                                           if m.message.attributes.get("drill") == marker])
        attempts = int(letters[0].message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"])
        _report("poison message", dead_lettered_after_attempts=attempts, dead_letters=len(letters),
                redriven=report.moved, dead_lettered_again_with_redrive_count_1=len(again), events_rows=0)
    finally:
        subscriber.close()


# -- (5) what an operator sees of failing deliveries, and the seek the README gives ---------------
def test_status_shows_deliveries_waiting_for_a_retry_and_seek_delivers_now(stack: RunningStack, clean_db) -> None:
    from click.testing import CliRunner

    from ops.cli import main
    from tests.http import post
    from tests.seeds import EVENTS_AUTH

    env = {"CT_LOCAL_DIR": stack.env["CT_LOCAL_DIR"], "PUBSUB_EMULATOR_HOST": None, "DATABASE_URL": None,
           "GOOGLE_CLOUD_PROJECT": None, "CLOUD_SQL_INSTANCE": None}
    # A stage change for a lead that does not exist fails every attempt (1-2 s apart on the test stack).
    failing = post(stack.url("events"), {"event_type": "stage_changed", "lead_id": str(uuid.uuid4()),
                                         "payload": {"to_stage": "qualificado"}}, headers=EVENTS_AUTH)
    assert failing.status == 202

    def pipeline_writer() -> dict[str, object]:
        shown = CliRunner().invoke(main, ["status", "--json"], env=env, catch_exceptions=False)
        return next(s for s in json.loads(shown.stdout)["subscriptions"]
                    if s["subscription"] == "stage-changed-pipeline-writer")

    push = wait_for(lambda: (row := pipeline_writer()).get("retrying") and row, timeout=30, interval=0.3)
    assert (push["state"], push["retrying"], push["last_answer"]) == ("ok", 1, "HTTP 500"), push
    subscriber = pubsub_v1.SubscriberClient()
    dlq = subscriber.subscription_path(stack.project, "stage-changed-dlq-ops")
    try:
        letters = wait_for(lambda: list(subscriber.pull(request={"subscription": dlq, "max_messages": 10,
                                                                 "return_immediately": True},
                                                        timeout=10).received_messages), timeout=60, interval=0.5)
        subscriber.acknowledge(subscription=dlq, ack_ids=[m.ack_id for m in letters])
    finally:
        subscriber.close()
    assert [m.message.attributes["event_id"] for m in letters] == [failing.json()["event_id"]]
    assert wait_for(lambda: pipeline_writer()["retrying"] == 0, timeout=10)  # dead-lettered: no retry waits

    # A seek: every message the chosen subscriptions hold is delivered now; one sent meanwhile is written.
    sought = CliRunner().invoke(main, ["subscriptions", "seek", "--type", "lead_created", "--json"], env=env,
                                catch_exceptions=False)
    assert sought.exit_code == 0, sought.output
    assert json.loads(sought.stdout)["sought"] == sorted(load_topology().event_type("lead_created").subscriptions)
    assert json.loads(sought.stdout)["since"] == stack.description["started_at"] - 60
    result = _send_all(stack, [lead_form(40_000, "default")])
    assert result.statuses() == {202: 1}
    _settle(clean_db, 1, timeout=60)
    unknown = CliRunner().invoke(main, ["subscriptions", "seek", "nope"], env=env, catch_exceptions=False)
    assert unknown.exit_code == 2 and "unknown push subscription" in unknown.output
