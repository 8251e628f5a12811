"""The ops CLI without a stack: help, refusals, exit codes, filters, target choice, the redrive loop.

The redrive loop runs here against an in-memory dead-letter subscription: a fake at the
Pub/Sub port (pull / acknowledge / modify_ack_deadline), so lease and release rules are
checked message by message; the real thing is in tests/integration/test_ops_deadletters.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest
from click.testing import CliRunner

from ops import deadletters
from ops.cli import main
from ops.clikit import table
from ops.context import ConfigError, resolve_target
from ops.deadletters import DeadLetter, Filter, Pass, RedriveOptions, Subscription
from shared.envelope import build_envelope
from shared.payloads import StageChanged
from shared.publisher import PublishError, RawMessage
from shared.topology import load_topology


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("path", _commands(main), ids=lambda p: " ".join(p) or "ctower")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="ctower")
    assert result.exit_code == 0, result.output
    usage, description = result.output.split("\n\n")[:2]
    assert usage.startswith(f"Usage: ctower {' '.join(path)}".rstrip()) and description.strip()


def test_the_ops_commands_are_registered_beside_the_others() -> None:
    assert {"dev", "db", "dlq", "events", "trace", "status", "audit", "tenants"} <= set(main.commands)
    assert {"list", "show", "redrive", "purge"} == set(main.commands["dlq"].commands)  # type: ignore[attr-defined]


def test_purge_refuses_without_a_filter_or_the_confirmation_before_touching_anything(tmp_path: Path) -> None:
    env = {"CT_LOCAL_DIR": str(tmp_path), "PUBSUB_EMULATOR_HOST": None}  # no stack: a refusal must come first
    no_filter = CliRunner().invoke(main, ["dlq", "purge", "--yes-i-am-sure"], env=env)
    assert no_filter.exit_code == 3 and "needs at least one filter" in no_filter.stderr
    no_flag = CliRunner().invoke(main, ["dlq", "purge", "--type", "won"], env=env)
    assert no_flag.exit_code == 3 and "--yes-i-am-sure" in no_flag.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    env = {"CT_LOCAL_DIR": str(tmp_path), "PUBSUB_EMULATOR_HOST": None}
    assert CliRunner().invoke(main, ["dlq", "redrive", "--older-than", "soon"], env=env).exit_code == 2
    assert CliRunner().invoke(main, ["events", "replay"], env=env).exit_code == 2
    both = CliRunner().invoke(main, ["events", "replay", "abc", "--all-failed"], env=env)
    assert both.exit_code == 2 and "not both" in both.stderr
    assert CliRunner().invoke(main, ["dlq", "redrive", "--limit", "0"], env=env).exit_code == 2


def test_durations() -> None:
    assert deadletters.parse_duration("90") == timedelta(seconds=90)
    assert deadletters.parse_duration("10m") == timedelta(minutes=10)
    assert deadletters.parse_duration(" 2h ") == timedelta(hours=2)
    assert deadletters.parse_duration("7d") == timedelta(days=7)
    with pytest.raises(ValueError, match="not a duration"):
        deadletters.parse_duration("1w")


NOW = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)


def _envelope(cid: str = "cid-1", tenant: str = "default") -> Any:
    return build_envelope(event_type="stage_changed", tenant=tenant, source="manual", correlation_id=cid,
                          payload=StageChanged(phone="11999998888", to_stage="qualificado"))


def _letter(cid: str = "cid-1", attributes: dict[str, str] | None = None, age: float = 60, n: int = 0,
            tenant: str = "default") -> DeadLetter:
    envelope = _envelope(cid, tenant)
    attrs = {**envelope.attributes(), "CloudPubSubDeadLetterSourceSubscription": "stage-changed-pipeline-writer",
             "CloudPubSubDeadLetterSourceDeliveryCount": "5"} if attributes is None else attributes
    return DeadLetter("stage-changed-dlq-ops", f"ack-{n}", f"m-{n}", envelope.to_bytes(), attrs,
                      NOW - timedelta(seconds=age))


def test_filters_read_attributes_first_and_the_envelope_when_they_are_missing() -> None:
    with_attrs, bare = _letter("a"), _letter("b", attributes={})
    assert Filter(correlation_ids=("a",)).matches(with_attrs, NOW)
    assert Filter(correlation_ids=("b",), tenants=("default",)).matches(bare, NOW)  # from the body
    assert not Filter(correlation_ids=("a",), tenants=("acme",)).matches(with_attrs, NOW)
    assert Filter(older_than=timedelta(seconds=30)).matches(with_attrs, NOW)
    assert not Filter(older_than=timedelta(minutes=5)).matches(with_attrs, NOW)
    assert not Filter(newer_than=timedelta(seconds=30)).matches(with_attrs, NOW)
    assert Filter().is_empty() and not Filter(event_types=("won",)).is_empty()
    undecodable = DeadLetter("s", "a", "m", b"not json", {}, NOW)
    assert undecodable.envelope is None and undecodable.decode_error
    assert not Filter(tenants=("default",)).matches(undecodable, NOW)


def test_republished_attributes_drop_pubsubs_and_count_the_redrive() -> None:
    letter = _letter(attributes={**_envelope().attributes(), "CloudPubSubDeadLetterSourceSubscription": "x",
                                 "CloudPubSubDeadLetterSourceDeliveryCount": "5", "redrive_count": "2"})
    attrs = deadletters.republish_attributes(letter, run_id=7)
    assert not any(k.startswith("CloudPubSubDeadLetter") for k in attrs)
    assert attrs["redrive_count"] == "3" and attrs["redrive_run"] == "7"
    assert attrs["event_id"] == letter.event_id and attrs["correlation_id"] == "cid-1"
    topology = load_topology()
    assert deadletters.original_topic(topology, topology.event_type("stage_changed"), letter) == "stage-changed"


class FakeDeadLetterSubscription:
    """An in-memory pull subscription with leases, at the Pub/Sub client's port.

    Thread-safe as the client is: a pass pulls ahead and acknowledges from threads of its own.
    `fail_acks` makes acknowledge raise (the ids stay on the subscription).
    """

    def __init__(self, messages: list[DeadLetter]) -> None:
        self.lock = threading.RLock()
        self.fail_acks = False
        self.messages = {m.message_id: m for m in messages}
        self.leased_until: dict[str, float] = {}
        self.acked: list[str] = []
        self.nacked: list[str] = []
        self.extended: list[str] = []
        self.requests: list[tuple[str, int]] = []  # (method, ack ids) per acknowledge / modify_ack_deadline call
        self.lease = 60.0

    def pull(self, request: dict[str, Any], timeout: float) -> Any:
        with self.lock:
            return self._pull(request)

    def _pull(self, request: dict[str, Any]) -> Any:
        now = time.monotonic()
        free = [m for mid, m in self.messages.items() if self.leased_until.get(mid, 0) <= now]
        batch = free[:request["max_messages"]]
        for m in batch:
            self.leased_until[m.message_id] = now + self.lease
        return SimpleNamespace(received_messages=[SimpleNamespace(ack_id=f"ack:{m.message_id}", message=SimpleNamespace(
            message_id=m.message_id, data=m.data, attributes=m.attributes, publish_time=m.published_at))
            for m in batch])

    def acknowledge(self, subscription: str, ack_ids: list[str]) -> None:
        with self.lock:
            self._acknowledge(ack_ids)

    def _acknowledge(self, ack_ids: list[str]) -> None:
        if self.fail_acks:
            raise RuntimeError("UNAVAILABLE")
        self.requests.append(("acknowledge", len(ack_ids)))
        for ack_id in ack_ids:
            self.messages.pop(ack_id.split(":", 1)[1], None)
            self.leased_until.pop(ack_id.split(":", 1)[1], None)
            self.acked.append(ack_id)

    def modify_ack_deadline(self, subscription: str, ack_ids: list[str], ack_deadline_seconds: int) -> None:
        with self.lock:
            self._modify_ack_deadline(ack_ids, ack_deadline_seconds)

    def _modify_ack_deadline(self, ack_ids: list[str], ack_deadline_seconds: int) -> None:
        self.requests.append(("modify_ack_deadline", len(ack_ids)))
        for ack_id in ack_ids:
            message_id = ack_id.split(":", 1)[1]
            if ack_deadline_seconds == 0:
                self.leased_until.pop(message_id, None)
                self.nacked.append(ack_id)
            elif message_id in self.messages:
                self.leased_until[message_id] = time.monotonic() + ack_deadline_seconds
                self.extended.append(ack_id)


class Recorder:
    """The publisher port: confirms publishes until `fail_after`, then refuses them; or refuses the
    messages whose correlation id is in `fail_cids`. Records each batch it was handed."""

    def __init__(self, fail_after: int | None = None, fail_cids: tuple[str, ...] = (),
                 timeout_seconds: float = 10.0) -> None:
        self.sent: list[tuple[str, dict[str, str]]] = []
        self.batches: list[int] = []
        self.fail_after = fail_after
        self.fail_cids = fail_cids
        self.timeout_seconds = timeout_seconds
        self.lock = threading.Lock()

    def publish_raw_batch(self, messages: Sequence[RawMessage]) -> list[str | PublishError]:
        with self.lock:
            return self._publish(messages)

    def _publish(self, messages: Sequence[RawMessage]) -> list[str | PublishError]:
        self.batches.append(len(messages))
        results: list[str | PublishError] = []
        for topic, _, attributes in messages:
            if (self.fail_after is not None and len(self.sent) >= self.fail_after) \
                    or attributes.get("correlation_id") in self.fail_cids:
                results.append(PublishError(f"publish to {topic} not confirmed: DeadlineExceeded"))
                continue
            self.sent.append((topic, attributes))
            results.append(str(len(self.sent)))
        return results


def _redrive(letters: list[DeadLetter], publisher: Recorder, **options: Any) -> tuple[Any, FakeDeadLetterSubscription]:
    fake = FakeDeadLetterSubscription(letters)
    topology = load_topology()
    sub = Subscription(fake, "p", "stage-changed-dlq-ops", emulator=True)
    report = deadletters.redrive([(topology.event_type("stage_changed"), sub)], publisher, topology,
                                 RedriveOptions(**options))
    return report, fake


def test_redrive_acks_only_confirmed_publishes_and_puts_back_the_rest() -> None:
    letters = [_letter(f"c{i}", n=i) for i in range(5)]
    report, fake = _redrive(letters, Recorder(fail_after=2))
    # One batch, published together: the first two confirmed and acked, the other three failed and stay.
    assert (report.moved, report.failed, report.stopped_early, report.status) == (2, 3, True, "partial")
    assert sorted(fake.messages) == ["m-2", "m-3", "m-4"]
    assert sorted(fake.acked) == ["ack:m-0", "ack:m-1"]
    assert not any(mid in fake.leased_until for mid in fake.messages)  # and all were released

    report, fake = _redrive(letters, Recorder(fail_after=2), stop_on_error=False)
    assert (report.moved, report.failed, report.stopped_early) == (2, 3, False)
    assert sorted(fake.messages) == ["m-2", "m-3", "m-4"]


def test_a_failed_publish_in_a_batch_leaves_that_message_unacked_and_reported() -> None:
    letters = [_letter(f"c{i}", n=i) for i in range(5)]
    publisher = Recorder(fail_cids=("c2",))
    report, fake = _redrive(letters, publisher)
    assert publisher.batches == [5]  # published together
    assert (report.matched, report.moved, report.failed, report.status) == (5, 4, 1, "partial")
    assert "ack:m-2" not in fake.acked and sorted(fake.messages) == ["m-2"]
    assert "ack:m-2" in fake.nacked and "m-2" not in fake.leased_until  # put back at once, free for the next run
    assert ("acknowledge", 4) in fake.requests  # the confirmed ones in one request
    [failed] = [i for i in report.items if i["outcome"] == "failed"]
    assert failed["correlation_id"] == "c2" and failed["event_id"] == letters[2].event_id
    assert "not confirmed" in failed["reason"] and report.errors == [f"{letters[2].event_id}: {failed['reason']}"]
    assert [i["outcome"] for i in report.items].count("moved") == 4


def test_stop_on_error_stops_after_the_chunk_with_the_failure() -> None:
    letters = [_letter(f"c{i}", n=i) for i in range(6)]
    publisher = Recorder(fail_cids=("c1",))
    report, fake = _redrive(letters, publisher, rate=20)  # 20/s: chunks of 2 (0.1 s each)
    assert publisher.batches == [2]
    assert (report.matched, report.moved, report.failed, report.stopped_early) == (2, 1, 1, True)
    assert sorted(fake.messages) == ["m-1", "m-2", "m-3", "m-4", "m-5"]  # the failed and the untried stay
    assert not fake.leased_until  # every one released
    report, fake = _redrive(letters, Recorder(fail_cids=("c1",)), rate=20, stop_on_error=False)
    assert (report.moved, report.failed, sorted(fake.messages)) == (5, 1, ["m-1"])


def test_redrive_batches_pulls_publishes_and_acks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ops.deadletters.pubsub.ACK_WITHIN_SECONDS", 60.0)  # a busy machine's pause sends none early
    letters = [_letter(f"c{i}", n=i) for i in range(250)]
    publisher = Recorder()
    report, fake = _redrive(letters, publisher)
    assert (report.moved, report.failed, len(fake.messages)) == (250, 0, 0)
    assert publisher.batches == [100, 100, 50]
    # Within half a second of their confirmation, the acknowledgements share one request (up to 1000).
    assert [r for r in fake.requests if r[0] == "acknowledge"] == [("acknowledge", 250)]
    assert not fake.extended  # published at once: no lease to renew
    report, fake = _redrive(letters, Recorder(), limit=120)  # a limit cuts the second batch
    assert (report.matched, report.moved, len(fake.messages)) == (120, 120, 130)
    assert not fake.leased_until


class HeldFirstChunk(Recorder):
    """Holds the first chunk's confirmations until the next chunk is being published (at most 5 s)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.next_started = threading.Event()
        self.overlapped = False

    def publish_raw_batch(self, messages: Sequence[RawMessage]) -> list[str | PublishError]:
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            self.overlapped = self.next_started.wait(timeout=5)
        else:
            self.next_started.set()
        return super().publish_raw_batch(messages)


def test_the_next_chunk_is_published_while_the_previous_ones_confirmations_come_and_acks_wait_for_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ops.deadletters.pubsub.ACK_WITHIN_SECONDS", 60.0)
    letters = [_letter(f"c{i}", n=i) for i in range(250)]
    publisher = HeldFirstChunk()
    fake = FakeDeadLetterSubscription(letters)
    acked_unconfirmed: list[str] = []
    acknowledge = fake.acknowledge

    def checked(subscription: str, ack_ids: list[str]) -> None:
        confirmed = {attributes["correlation_id"] for _, attributes in publisher.sent}
        acked_unconfirmed.extend(i for i in ack_ids
                                 if fake.messages[i.split(":", 1)[1]].attributes["correlation_id"] not in confirmed)
        acknowledge(subscription, ack_ids)

    fake.acknowledge = checked  # type: ignore[method-assign]
    topology = load_topology()
    report = deadletters.redrive([(topology.event_type("stage_changed"),
                                   Subscription(fake, "p", "stage-changed-dlq-ops", emulator=True))],
                                 publisher, topology, RedriveOptions())
    assert publisher.overlapped  # two chunks awaited confirmation at once
    assert (report.moved, len(fake.messages), acked_unconfirmed) == (250, 0, [])
    assert [n for method, n in fake.requests if method == "acknowledge"] == [250]


def test_after_a_failed_publish_the_chunks_in_flight_are_settled_and_nothing_more_is_published() -> None:
    letters = [_letter(f"c{i}", n=i) for i in range(250)]
    publisher = Recorder(fail_cids=("c1",))
    report, fake = _redrive(letters, publisher)
    # The second chunk was published before the first's failure was known; the third never was.
    assert publisher.batches == [100, 100] and deadletters.PUBLISHES_IN_FLIGHT == 2
    assert (report.moved, report.failed, report.stopped_early) == (199, 1, True)
    assert len(fake.messages) == 51 and "m-1" in fake.messages and not fake.leased_until


def test_an_acknowledgement_that_fails_is_raised_and_the_messages_stay() -> None:
    letters = [_letter(f"c{i}", n=i) for i in range(5)]
    fake = FakeDeadLetterSubscription(letters)
    fake.fail_acks = True
    topology = load_topology()
    with pytest.raises(deadletters.AckError, match="5 message\\(s\\) not acknowledged"):
        deadletters.redrive([(topology.event_type("stage_changed"),
                              Subscription(fake, "p", "stage-changed-dlq-ops", emulator=True))],
                            Recorder(), topology, RedriveOptions())
    assert len(fake.messages) == 5


def test_a_rate_paces_chunks() -> None:
    letters = [_letter(f"c{i}", n=i) for i in range(6)]
    publisher = Recorder()
    started = time.monotonic()
    report, _ = _redrive(letters, publisher, rate=40)  # chunks of 4: one now, the next 0.1 s later
    elapsed = time.monotonic() - started
    assert report.moved == 6 and publisher.batches == [4, 2]
    assert 0.09 <= elapsed < 2
    assert deadletters.publish_chunk_size(None) == deadletters.PUBLISH_BATCH
    assert deadletters.publish_chunk_size(0.5) == 1 and deadletters.publish_chunk_size(5000) == 100


def test_messages_waiting_for_their_chunk_keep_their_lease() -> None:
    # A publish may wait 55 s: the pull's 60 s lease could run out, so the waiting ones are renewed first.
    letters = [_letter(f"c{i}", n=i) for i in range(3)]
    report, fake = _redrive(letters, Recorder(timeout_seconds=55))
    assert report.moved == 3
    assert sorted(fake.extended) == ["ack:m-0", "ack:m-1", "ack:m-2"]
    assert deadletters.lease_seconds(55) == (65, 130)
    assert deadletters.lease_seconds(10) == (20, 60)
    assert deadletters.lease_seconds(1000)[1] == deadletters.MAX_ACK_DEADLINE


def test_redrive_limit_dry_run_filter_and_max_redrives() -> None:
    letters = [_letter(f"c{i}", n=i) for i in range(4)]
    report, fake = _redrive(letters, Recorder(), limit=3)
    assert report.moved == 3 and len(fake.messages) == 1
    report, fake = _redrive(letters, Recorder(), dry_run=True)
    assert (report.would_move, report.moved, len(fake.messages), fake.acked) == (4, 0, 4, [])
    report, fake = _redrive(letters, Recorder(), dry_run=True, limit=2)
    assert (report.matched, report.would_move, fake.acked) == (2, 2, [])
    report, fake = _redrive(letters, Recorder(), selection=Filter(correlation_ids=("c1", "c3")))
    assert report.moved == 2 and sorted(fake.messages) == ["m-0", "m-2"]
    assert sorted(fake.nacked) == ["ack:m-0", "ack:m-2"] and not fake.leased_until  # filtered out: released
    looping = _letter("loop", attributes={**_envelope("loop").attributes(), "redrive_count": "3"}, n=9)
    publisher = Recorder()
    report, fake = _redrive([looping, *letters[:1]], publisher, max_redrives=3)
    assert (report.moved, report.skipped) == (1, 1) and "m-9" in fake.messages
    assert report.status == "ok" and "max 3" in report.items[0]["reason"]
    assert publisher.sent[0] == ("stage-changed", {**publisher.sent[0][1], "redrive_count": "1"})


def test_the_report_says_how_many_failed_and_where_it_stopped(capsys: pytest.CaptureFixture[str]) -> None:
    from ops.commands_dlq import _print_report

    report, _ = _redrive([_letter(f"c{i}", n=i) for i in range(3)], Recorder(fail_cids=("c1",)))
    _print_report(report, 7, False, "moved")
    out = capsys.readouterr().out
    assert "audit run 7: matched 3, moved 2, skipped 0, failed 1 (partial)" in out
    assert "c1" in out and "stopped after the first failed publish" in out


def test_a_pass_sees_each_message_once_even_when_its_lease_runs_out() -> None:
    fake = FakeDeadLetterSubscription([_letter(f"c{i}", n=i) for i in range(3)])
    fake.lease = 0.0  # every pull offers everything again
    with Pass(Subscription(fake, "p", "s", emulator=True)) as walk:
        batches = list(walk.batches())
    assert [len(b) for b in batches] == [3] and walk.seen == 3


def test_the_target_is_local_by_default_and_cloud_only_when_asked(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CT_LOCAL_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match="no running local stack"):
        resolve_target(environ={})
    (tmp_path / "stack.json").write_text(json.dumps({"project": "ct-local", "pubsub_emulator_host": "127.0.0.1:1",
                                                     "database_url": "postgresql://localhost/ct", "functions": {}}))
    local = resolve_target(environ={"GOOGLE_CLOUD_PROJECT": "my-cloud"})  # a shell's project alone is not the cloud
    assert (local.mode, local.project, local.emulator_host) == ("local", "ct-local", "127.0.0.1:1")
    assert local.settings.database_url == "postgresql://localhost/ct"
    cloud = resolve_target(environ={"GOOGLE_CLOUD_PROJECT": "prod", "CLOUD_SQL_INSTANCE": "p:r:i"})
    assert (cloud.mode, cloud.project, cloud.emulator_host, cloud.label) == ("cloud", "prod", None, "cloud:prod")
    flagged = resolve_target("prod2", environ={})
    assert flagged.cloud and flagged.project == "prod2"
    explicit = resolve_target(environ={"PUBSUB_EMULATOR_HOST": "127.0.0.1:2", "GOOGLE_CLOUD_PROJECT": "p2",
                                       "DATABASE_URL": "postgresql://x/y"})
    assert (explicit.mode, explicit.project, explicit.emulator_host) == ("local", "p2", "127.0.0.1:2")


def test_tables_align_and_cut_long_cells() -> None:
    text = table([{"a": "x" * 80, "b": None}, {"a": "y", "b": 1.25}], ["a", "b"])
    header, first, second = text.splitlines()
    assert header.startswith("A ") and first.endswith("...  -") and second.rstrip().endswith("1.2")
    assert table([], ["a"], empty="nothing") == "nothing"


def test_a_batch_is_split_into_requests_by_topic_and_within_pubsubs_limits() -> None:
    from ops.publish_requests import MAX_BYTES_PER_REQUEST, MAX_MESSAGES_PER_REQUEST, _requests

    small = [("a" if i % 3 else "b", b"x", {"k": "v"}) for i in range(2500)]
    requests = list(_requests(small))
    assert [(topic, len(positions)) for topic, positions in requests] == [("b", 834), ("a", 1000), ("a", 666)]
    assert sorted(i for _, positions in requests for i in positions) == list(range(2500))  # each once
    assert all(positions == sorted(positions) for _, positions in requests)  # in order within a topic
    assert max(len(p) for _, p in requests) <= MAX_MESSAGES_PER_REQUEST
    big = [("a", b"x" * (4 * 1024 * 1024), {}) for _ in range(5)]  # 4 MiB each: two fit under the limit
    assert [len(p) for _, p in _requests(big)] == [2, 2, 1] and MAX_BYTES_PER_REQUEST > 2 * 4 * 1024 * 1024


class EmulatorLikePulls(FakeDeadLetterSubscription):
    """Answers at most 100 per pull, as the emulator does, each pull taking a moment; counts pulls under way."""

    def __init__(self, letters: list[DeadLetter]) -> None:
        super().__init__(letters)
        self.under_way = 0
        self.most_under_way = 0

    def pull(self, request: dict[str, Any], timeout: float) -> Any:
        with self.lock:
            self.under_way += 1
            self.most_under_way = max(self.most_under_way, self.under_way)
        time.sleep(0.02)
        with self.lock:
            self.under_way -= 1
            return self._pull({**request, "max_messages": min(100, request["max_messages"])})


def test_two_pulls_are_under_way_at_once_and_every_message_is_walked_once() -> None:
    fake = EmulatorLikePulls([_letter(f"c{i}", n=i) for i in range(250)])
    with Pass(Subscription(fake, "p", "s", emulator=True)) as walk:
        batches = list(walk.batches())
    assert fake.most_under_way == deadletters.PULLS_IN_FLIGHT == 2
    assert sorted(len(b) for b in batches) == [50, 100, 100] and walk.seen == 250
    assert len({m.message_id for b in batches for m in b}) == 250
    assert not fake.leased_until  # what the pass held was released when it ended

    fake = EmulatorLikePulls([_letter(f"c{i}", n=i) for i in range(250)])
    with Pass(Subscription(fake, "p", "s", emulator=True), max_messages=150) as walk:
        batches = list(walk.batches())
    assert walk.seen == 150 and sorted(len(b) for b in batches) == [50, 100]  # never asks past the scan's cap


def test_under_a_rate_a_redrive_pulls_one_at_a_time() -> None:
    fake = EmulatorLikePulls([_letter(f"c{i}", n=i) for i in range(250)])
    topology = load_topology()
    report = deadletters.redrive([(topology.event_type("stage_changed"), Subscription(fake, "p", "s", emulator=True))],
                                 Recorder(), topology, RedriveOptions(rate=100_000))
    assert report.moved == 250 and fake.most_under_way == 1


class SlowSecondChunk(Recorder):
    """Takes a second over the second chunk, and notes which acknowledgements were sent by then."""

    def __init__(self, fake: FakeDeadLetterSubscription) -> None:
        super().__init__()
        self.fake, self.calls, self.acked_meanwhile = fake, 0, -1

    def publish_raw_batch(self, messages: Sequence[RawMessage]) -> list[str | PublishError]:
        with self.lock:
            self.calls += 1
            second = self.calls == 2
        if second:
            time.sleep(1.0)
            self.acked_meanwhile = len(self.fake.acked)
        return super().publish_raw_batch(messages)


def test_acknowledgements_go_in_requests_of_up_to_1000_and_wait_at_most_half_a_second(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patched:
        patched.setattr("ops.deadletters.pubsub.ACK_WITHIN_SECONDS", 60.0)
        report, fake = _redrive([_letter(f"c{i}", n=i) for i in range(2500)], Recorder())
    assert report.moved == 2500 and not fake.messages
    assert [n for method, n in fake.requests if method == "acknowledge"] == [1000, 1000, 500]

    fake = FakeDeadLetterSubscription([_letter(f"c{i}", n=i) for i in range(250)])
    publisher = SlowSecondChunk(fake)
    topology = load_topology()
    report = deadletters.redrive([(topology.event_type("stage_changed"),
                                   Subscription(fake, "p", "stage-changed-dlq-ops", emulator=True))],
                                 publisher, topology, RedriveOptions())
    # The first chunk was confirmed before the second's second was over: its ack did not wait for the pass's end.
    assert report.moved == 250 and publisher.acked_meanwhile == 100 and deadletters.ACK_WITHIN_SECONDS <= 0.5
