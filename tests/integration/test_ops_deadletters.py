"""`ctower dlq` and `ctower events` against the running stack: real dead letters, real redrives.

The module fixture makes the dead letters the tests need, each scenario under its own
correlation ids. Three go the whole way (a stage change for a lead that does not exist
fails 5 times and Pub/Sub dead-letters it, ~10 s), all three retrying at once (the stack's
pusher, unlike the emulator's own push, keeps redelivering several failures). The others are
the same envelopes published straight to the dead-letter topic with the attributes
Pub/Sub adds, which is all a dead letter is. Each test fixes its leads and works on its
own messages only; the teardown leaves the dead-letter subscription empty.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from google.cloud import pubsub_v1

from ops import deadletters
from ops.cli import main
from ops.context import OpsContext, Target
from ops.publish_requests import RequestPublisher
from shared.db import Database
from shared.envelope import build_envelope
from shared.payloads import StageChanged
from shared.publisher import PublishError, RawMessage
from tests.conftest import ROOT, RunningStack, query, wait_for
from tests.http import post
from tests.seeds import EVENTS_AUTH

pytestmark = pytest.mark.integration

DLQ = "stage-changed-dlq-ops"
REAL = ("redrive", "replay", "loop")  # dead-lettered by Pub/Sub itself
MADE = {"filter": 2, "fail": 3, "limit": 2}  # published to the dead-letter topic as Pub/Sub would

def ctower(stack: RunningStack, *args: str) -> Result:
    """`ctower ...` in-process, pointed at the stack only through its .local/stack.json (the default)."""
    env = {"CT_LOCAL_DIR": stack.env["CT_LOCAL_DIR"], "PUBSUB_EMULATOR_HOST": None, "GOOGLE_CLOUD_PROJECT": None,
           "DATABASE_URL": None, "CLOUD_SQL_INSTANCE": None, "CT_OPERATOR": "pytest-operator"}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


class DeadLetters:
    """The module's dead letters: per scenario, the correlation ids, event ids and missing lead ids."""

    def __init__(self, stack: RunningStack, database: Database) -> None:
        self.stack = stack
        self.database = database
        self.prefix = f"ops-{uuid.uuid4().hex[:8]}"
        self.cids: dict[str, list[str]] = {}
        self.events: dict[str, str] = {}  # correlation id -> event id
        self.leads: dict[str, str] = {}  # correlation id -> the missing lead id
        self.subscriber = pubsub_v1.SubscriberClient()
        self.path = self.subscriber.subscription_path(stack.project, DLQ)

    def send(self) -> None:
        for scenario in REAL:
            [cid] = self.cids[scenario] = [f"{self.prefix}-{scenario}-0"]
            self.leads[cid] = str(uuid.uuid4())
            response = post(self.stack.url("events"), {"event_type": "stage_changed", "lead_id": self.leads[cid],
                                                       "payload": {"to_stage": "qualificado"}},
                            headers={**EVENTS_AUTH, "X-Correlation-ID": cid})
            assert response.status == 202, response.text
            self.events[cid] = response.json()["event_id"]
        for scenario in REAL:  # retrying all at once, as a real outage's failures do
            [cid] = self.cids[scenario]
            # Poll the ledger, not Pub/Sub, until the fifth attempt failed; then it is dead-lettered.
            wait_for(lambda cid=cid: [e["attempts"] for e in self.ledger([cid])] == [5], timeout=90, interval=1)
            wait_for(lambda cid=cid: cid in self.contents(), timeout=30, interval=1)
        publisher = pubsub_v1.PublisherClient()
        topic = publisher.topic_path(self.stack.project, "stage-changed-dlq")
        for scenario, count in MADE.items():
            self.cids[scenario] = [f"{self.prefix}-{scenario}-{i}" for i in range(count)]
            for cid in self.cids[scenario]:
                self.leads[cid] = str(uuid.uuid4())
                envelope = build_envelope(event_type="stage_changed", tenant="default", source="manual",
                                          correlation_id=cid, payload=StageChanged(lead_id=uuid.UUID(self.leads[cid]),
                                                                                   to_stage="qualificado"))
                self.events[cid] = envelope.event_id
                publisher.publish(topic, envelope.to_bytes(), **envelope.attributes(),
                                  CloudPubSubDeadLetterSourceSubscription="stage-changed-pipeline-writer",
                                  CloudPubSubDeadLetterSourceDeliveryCount="5").result(timeout=30)
        wait_for(lambda: set(self.contents()) >= set(self.events), timeout=30, interval=1)

    def contents(self) -> dict[str, dict[str, str]]:
        """What the dead-letter subscription holds of ours, read with the raw client (then put back)."""
        found: dict[str, dict[str, str]] = {}
        ack_ids: list[str] = []
        seen: set[str] = set()
        while True:
            pulled = self.subscriber.pull(request={"subscription": self.path, "max_messages": 100,
                                                   "return_immediately": True}, timeout=10).received_messages
            ack_ids += [m.ack_id for m in pulled]
            fresh = [m for m in pulled if m.message.message_id not in seen]
            if not fresh:
                break
            for m in fresh:
                seen.add(m.message.message_id)
                cid = m.message.attributes.get("correlation_id", "")
                if cid.startswith(self.prefix):
                    found[cid] = dict(m.message.attributes)
        if ack_ids:
            self.subscriber.modify_ack_deadline(subscription=self.path, ack_ids=ack_ids, ack_deadline_seconds=0)
        return found

    def fix(self, *cids: str) -> None:
        """The fault is fixed: the leads the stage changes name now exist."""
        with self.database.transaction() as cur:
            for cid in cids:
                cur.execute("INSERT INTO leads (id, tenant_id, email, source, stage_changed_at, correlation_id, "
                            "last_correlation_id) VALUES (%s, 'default', %s, 'manual', '2000-01-01', %s, %s) "
                            "ON CONFLICT (id) DO NOTHING",
                            (self.leads[cid], f"{cid}@example.com", f"fix-{cid}", f"fix-{cid}"))

    def moves(self, cids: list[str]) -> list[dict[str, Any]]:
        return query(self.database, "SELECT event_id, correlation_id, applied FROM pipeline_moves "
                                    "WHERE correlation_id = ANY(%s::text[]) ORDER BY correlation_id", cids)

    def ledger(self, cids: list[str]) -> list[dict[str, Any]]:
        return query(self.database, "SELECT event_id, correlation_id, status, attempts FROM events "
                                    "WHERE correlation_id = ANY(%s::text[]) ORDER BY correlation_id, id", cids)

    def drain(self) -> None:
        """Ack whatever of ours is left (the tests must not see each other's messages)."""
        while True:
            pulled = self.subscriber.pull(request={"subscription": self.path, "max_messages": 100,
                                                   "return_immediately": True}, timeout=10).received_messages
            if not pulled:
                return
            ours = [m.ack_id for m in pulled if m.message.attributes.get("correlation_id", "").startswith(self.prefix)]
            others = [m.ack_id for m in pulled if m.ack_id not in ours]
            if ours:
                self.subscriber.acknowledge(subscription=self.path, ack_ids=ours)
            if others:
                self.subscriber.modify_ack_deadline(subscription=self.path, ack_ids=others, ack_deadline_seconds=0)
            if not ours:
                return


@pytest.fixture(scope="module")
def letters(stack: RunningStack, database: Database) -> Iterator[DeadLetters]:
    made = DeadLetters(stack, database)
    made.send()
    # The loop scenario's redrive starts now, unfixed: it fails again and is back (redrive_count 1) by its test.
    first = ctower(stack, "dlq", "redrive", "--correlation-id", made.cids["loop"][0], "--json")
    assert first.exit_code == 0, first.output
    yield made
    made.fix(*made.events)  # anything still in flight now succeeds instead of dead-lettering again
    made.drain()
    made.subscriber.close()


def test_failed_messages_land_in_the_dead_letter_subscription_and_list_and_show_them(
        stack: RunningStack, letters: DeadLetters) -> None:
    listed = ctower(stack, "dlq", "list", "--json")
    assert listed.exit_code == 1, listed.output  # dead letters present: a problem for scripts
    row = next(r for r in as_json(listed) if r["subscription"] == DLQ)
    assert row["event_type"] == "stage_changed"
    assert row["depth"] >= len(REAL) + sum(MADE.values()) - 1  # all ours but the loop one, out being redriven
    assert row["oldest_age_seconds"] is not None and row["oldest_age_seconds"] >= 0
    table = ctower(stack, "dlq", "list")
    assert "stage-changed-dlq-ops" in table.stdout and "DEPTH" in table.stdout

    [cid] = letters.cids["redrive"]  # a real dead letter
    shown = ctower(stack, "dlq", "show", "--correlation-id", cid, "--json")
    assert shown.exit_code == 0, shown.output
    [message] = as_json(shown)
    assert message["event_id"] == letters.events[cid]
    assert message["source_subscription"] == "stage-changed-pipeline-writer"
    assert message["delivery_count"] == 5
    assert message["redrive_count"] == 0
    assert message["envelope"]["payload"]["lead_id"] == letters.leads[cid]
    assert message["attributes"]["tenant"] == "default"
    readable = ctower(stack, "dlq", "show", "--correlation-id", cid, "--body")
    assert letters.events[cid] in readable.stdout and '"to_stage": "qualificado"' in readable.stdout
    # Reading put everything back.
    assert set(letters.contents()) >= set(letters.cids["redrive"] + letters.cids["filter"])


def test_dry_run_counts_and_moves_nothing(stack: RunningStack, letters: DeadLetters) -> None:
    cids = letters.cids["filter"]
    args = [a for cid in cids for a in ("--correlation-id", cid)]
    result = ctower(stack, "dlq", "redrive", *args, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    report = as_json(result)
    assert (report["matched"], report["would_move"], report["moved"]) == (2, 2, 0)
    assert set(letters.contents()) >= set(cids)
    audit = query(letters.database, "SELECT dry_run, moved, filter FROM ops_audit WHERE id = %s", report["run_id"])
    assert audit == [{"dry_run": True, "moved": 0, "filter": {"correlation_ids": cids, "limit": None, "rate": None,
                                                               "max_redrives": 3}}]


def test_after_the_fix_redrive_moves_the_message_and_the_row_appears(stack: RunningStack,
                                                                      letters: DeadLetters) -> None:
    """Run as the operator runs it: `.venv/bin/ctower` in a real process, with the stack's environment."""
    [cid] = letters.cids["redrive"]
    letters.fix(cid)
    env = {**stack.env, "PUBSUB_EMULATOR_HOST": stack.description["pubsub_emulator_host"]}
    ctower_bin = Path(ROOT, ".venv", "bin", "ctower")
    assert os.access(ctower_bin, os.X_OK)
    result = subprocess.run([str(ctower_bin), "dlq", "redrive", "--correlation-id", cid, "--operator",
                             "ana@example.com", "--progress"], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "moved 1, skipped 0, failed 0 (ok)" in result.stdout
    assert "redriving" in result.stderr  # the progress bar
    [move] = wait_for(lambda: letters.moves([cid]), timeout=30)
    assert move["event_id"] == letters.events[cid]
    assert wait_for(lambda: [e["status"] for e in letters.ledger([cid])] == ["processed"], timeout=30)
    assert cid not in letters.contents()
    run_id = int(result.stdout.split("audit run ")[1].split(":")[0])
    [audit] = query(letters.database, "SELECT command, operator, target, status, matched, moved, skipped, failed, "
                                      "event_ids, correlation_ids, finished_at FROM ops_audit WHERE id = %s", run_id)
    assert audit["command"] == "dlq redrive" and audit["operator"] == "ana@example.com"
    assert audit["target"] == f"local:{stack.project}"
    assert (audit["status"], audit["matched"], audit["moved"], audit["skipped"], audit["failed"]) == \
        ("ok", 1, 1, 0, 0)
    assert audit["event_ids"] == [letters.events[cid]] and audit["correlation_ids"] == [cid]
    assert audit["finished_at"] is not None
    # The trace of that request shows the failure, the redrive and the row.
    traced = ctower(stack, "trace", cid)
    assert traced.exit_code == 0, traced.output
    assert "event stage_changed" in traced.stdout and "processed" in traced.stdout
    assert "dlq redrive" in traced.stdout and "by ana@example.com" in traced.stdout
    assert "stage move" in traced.stdout


def test_a_filter_moves_only_what_it_matches(stack: RunningStack, letters: DeadLetters) -> None:
    chosen, other = letters.cids["filter"]
    letters.fix(chosen, other)
    result = ctower(stack, "dlq", "redrive", "--type", "stage_changed", "--correlation-id", chosen, "--json")
    assert result.exit_code == 0, result.output
    report = as_json(result)
    assert (report["matched"], report["moved"]) == (1, 1)
    assert [i["correlation_id"] for i in report["items"]] == [chosen]
    wait_for(lambda: letters.moves([chosen]), timeout=30)
    remaining = letters.contents()
    assert other in remaining and chosen not in remaining
    assert letters.moves([other]) == []
    # Attribute filters that match nothing move nothing.
    none = ctower(stack, "dlq", "redrive", "--correlation-id", other, "--tenant", "acme", "--json")
    assert none.exit_code == 0 and as_json(none)["matched"] == 0
    too_young = ctower(stack, "dlq", "redrive", "--correlation-id", other, "--older-than", "1d", "--json")
    assert as_json(too_young)["matched"] == 0
    assert other in letters.contents()


def test_a_redrive_limit_moves_only_that_many(stack: RunningStack, letters: DeadLetters) -> None:
    cids = letters.cids["limit"]
    letters.fix(*cids)
    args = [a for cid in cids for a in ("--correlation-id", cid)]
    result = ctower(stack, "dlq", "redrive", *args, "--limit", "1", "--rate", "20", "--json")
    assert result.exit_code == 0, result.output
    assert as_json(result)["moved"] == 1
    wait_for(lambda: len(letters.moves(cids)) == 1, timeout=30)
    assert len([c for c in cids if c in letters.contents()]) == 1
    rest = ctower(stack, "dlq", "redrive", *args, "--json")
    assert as_json(rest)["moved"] == 1
    wait_for(lambda: len(letters.moves(cids)) == 2, timeout=30)
    assert not set(cids) & set(letters.contents())


class FailsAfter:
    """The real publisher (the redrive's publisher port), until it has been handed `n` messages; every
    message after those fails, in the same batch or a later one."""

    def __init__(self, real: RequestPublisher, n: int) -> None:
        self.real, self.n, self.calls = real, n, 0
        self.timeout_seconds = real.timeout_seconds
        self.lock = threading.Lock()  # a redrive publishes two batches at once, from two threads

    def publish_raw_batch(self, messages: Sequence[RawMessage]) -> list[str | PublishError]:
        with self.lock:
            passed = list(messages[:max(0, self.n - self.calls)])
            self.calls += len(messages)
        return [*self.real.publish_raw_batch(passed),
                *(PublishError(f"publish to {topic} not confirmed: DeadlineExceeded: injected by the test")
                  for topic, _, _ in messages[len(passed):])]


def test_a_publish_failure_midway_leaves_the_rest_in_the_dead_letter_subscription(
        stack: RunningStack, letters: DeadLetters) -> None:
    cids = letters.cids["fail"]
    letters.fix(*cids)
    ctx = OpsContext(Target("local", stack.project, stack.description["pubsub_emulator_host"],
                            _settings(stack)))
    try:
        subscription = deadletters.Subscription(ctx.subscriber, stack.project, DLQ, emulator=True)
        et = ctx.topology.event_type("stage_changed")
        options = deadletters.RedriveOptions(selection=deadletters.Filter(correlation_ids=tuple(cids)))
        report = deadletters.redrive([(et, subscription)], FailsAfter(RequestPublisher(ctx.publisher), 1),
                                     ctx.topology, options)
    finally:
        ctx.close()
    # The first one is confirmed and acked; the others fail, in its batch or the next (however the emulator's pulls
    # group them), are nacked and stay; nothing is published once the first failure is known.
    assert (report.moved, report.stopped_early, report.status) == (1, True, "partial")
    assert 1 <= report.failed <= 2 and report.failed == len([i for i in report.items if i["outcome"] == "failed"])
    moved = {i["correlation_id"] for i in report.items if i["outcome"] == "moved"}
    wait_for(lambda: len(letters.moves(cids)) == 1, timeout=30)
    assert {m["correlation_id"] for m in letters.moves(cids)} == moved
    left = {c for c in cids if c in letters.contents()}
    assert left == set(cids) - moved  # the failed one was put back, the untried one never left

    # The operator runs it again with the real publisher: the rest moves, and nothing is written twice.
    args = [a for cid in cids for a in ("--correlation-id", cid)]
    again = ctower(stack, "dlq", "redrive", *args, "--json")
    assert again.exit_code == 0, again.output
    assert as_json(again)["moved"] == 2
    wait_for(lambda: len(letters.moves(cids)) == 3, timeout=30)
    ledger = wait_for(lambda: (rows := letters.ledger(cids)) and all(r["status"] == "processed" for r in rows)
                      and rows, timeout=30)
    assert sorted(r["correlation_id"] for r in ledger) == sorted(cids)  # one row each: no duplicate delivery
    assert not set(cids) & set(letters.contents())


def _settings(stack: RunningStack) -> Any:
    from dataclasses import replace

    from shared.config import load_settings

    return replace(load_settings(), project_id=stack.project, database_url=stack.env["DATABASE_URL"])


def test_failed_events_are_listed_and_replayed_from_the_ledger(stack: RunningStack, letters: DeadLetters) -> None:
    [cid] = letters.cids["replay"]
    event_id = letters.events[cid]
    listed = ctower(stack, "events", "failed", "--type", "stage_changed", "--since", "1h", "--json")
    assert listed.exit_code == 1  # failures exist
    row = next(r for r in as_json(listed) if r["event_id"] == event_id)
    assert row["attempts"] == 5 and "LeadNotFound" in row["last_error"] and row["correlation_id"] == cid
    assert ctower(stack, "events", "replay").exit_code == 2  # neither ids nor --all-failed

    letters.fix(cid)
    replayed = ctower(stack, "events", "replay", event_id, "--json")
    assert replayed.exit_code == 0, replayed.output
    assert as_json(replayed)["moved"] == 1
    [move] = wait_for(lambda: letters.moves([cid]), timeout=30)
    assert move["event_id"] == event_id
    assert wait_for(lambda: [e["status"] for e in letters.ledger([cid])] == ["processed"], timeout=30)
    again = ctower(stack, "events", "replay", event_id, "--json")  # not failed any more: left alone
    assert again.exit_code == 1 and as_json(again)["skipped"] == 1
    # Its dead letter is still there; nothing will ever need it again: purge it.
    assert cid in letters.contents()
    purged = ctower(stack, "dlq", "purge", "--correlation-id", cid, "--yes-i-am-sure", "--json")
    assert purged.exit_code == 0, purged.output
    assert as_json(purged)["moved"] == 1
    assert cid not in letters.contents()
    [audit] = query(letters.database, "SELECT command, detail FROM ops_audit WHERE id = %s",
                    as_json(purged)["run_id"])
    assert audit["command"] == "dlq purge" and event_id in audit["detail"]["items"][0]["body"]


def test_purge_refuses_without_confirmation_or_filter(stack: RunningStack, letters: DeadLetters) -> None:
    [cid] = letters.cids["loop"]
    unconfirmed = ctower(stack, "dlq", "purge", "--correlation-id", cid)
    assert unconfirmed.exit_code == 3 and "--yes-i-am-sure" in unconfirmed.stderr
    unfiltered = ctower(stack, "dlq", "purge", "--yes-i-am-sure")
    assert unfiltered.exit_code == 3 and "filter" in unfiltered.stderr


def test_a_message_redriven_too_often_is_left_in_place_and_reported(stack: RunningStack,
                                                                     letters: DeadLetters) -> None:
    [cid] = letters.cids["loop"]  # redriven once by the fixture, still broken: back with redrive_count 1
    back = wait_for(lambda: (found := letters.contents().get(cid)) and found.get("redrive_count") == "1" and found,
                    timeout=90, interval=1)
    assert back["event_id"] == letters.events[cid] and back["correlation_id"] == cid
    assert back["redrive_run"] and back["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    held = ctower(stack, "dlq", "redrive", "--correlation-id", cid, "--max-redrives", "1")
    assert held.exit_code == 1, held.output
    assert "skipped 1" in held.stdout and "redriven 1 times (max 1)" in held.stdout
    assert cid in letters.contents()
    purged = ctower(stack, "dlq", "purge", "--correlation-id", cid, "--yes-i-am-sure")
    assert purged.exit_code == 0 and cid not in letters.contents()


def test_a_batch_goes_as_one_request_per_topic_and_a_failed_request_fails_only_its_messages(
        stack: RunningStack) -> None:
    ctx = OpsContext(Target("local", stack.project, stack.description["pubsub_emulator_host"], _settings(stack)))
    topic = f"requests-{uuid.uuid4().hex[:8]}"  # a topic of its own: no writer sees these bodies
    try:
        publisher = RequestPublisher(ctx.publisher)
        ctx.publisher.client.create_topic(name=f"projects/{stack.project}/topics/{topic}")
        results = publisher.publish_raw_batch([(topic, b"one", {"correlation_id": "rq-1"}),
                                               ("no-such-topic", b"two", {}),
                                               (topic, b"three", {"correlation_id": "rq-3"})])
    finally:
        ctx.close()
    first, missing, third = results
    assert isinstance(first, str) and isinstance(third, str) and first != third  # confirmed: each its own id
    assert isinstance(missing, PublishError) and "no-such-topic" in str(missing) and "NotFound" in str(missing)
