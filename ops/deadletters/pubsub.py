"""The port to Pub/Sub for dead-letter subscriptions: pull, ack, nack, lease, and one pass over them.

Every read is a pull without ack followed by a nack (modify_ack_deadline 0): the
emulator has no Monitoring API, so depth and oldest age come from this peek in both
places (capped by `max_scan`). One pass pulls each message once: the ones not settled
stay leased until the pass ends, so the pull reaches past them instead of getting
them back again. A pass keeps PULLS_IN_FLIGHT pulls under way and acknowledges in the
background.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from ops.deadletters.model import DEFAULT_MAX_SCAN, DeadLetter

PULL_BATCH = 1000  # messages per pull: Pub/Sub's maximum (the emulator answers at most 100)
# Pulls under way at once: the emulator answered two pulls of 100 in about the time of one, and spent
# a quarter to a half of the CPU per message doing it (bench/redrive.py).
PULLS_IN_FLIGHT = 2
ACK_IDS_PER_REQUEST = 1000
ACK_WITHIN_SECONDS = 0.5  # a confirmed message waits at most this long for others to share its ack request
# The dead-letter ops subscriptions' ack deadline (terraform/pubsub.tf, ops/provision.py): a pulled message's lease.
ASSUMED_ACK_DEADLINE = 60
MAX_ACK_DEADLINE = 600  # Pub/Sub's maximum


class AckError(RuntimeError):
    """Acknowledgements that failed: those messages are still on the subscription (a redriven one
    was republished, so a later redrive sends it again; the writers are idempotent)."""

    def __init__(self, count: int, error: BaseException) -> None:
        super().__init__(f"{count} message(s) not acknowledged, still in the dead-letter subscription: "
                         f"{type(error).__name__}: {error}")
        self.count = count


def from_received(subscription: str, received: Any) -> DeadLetter:
    """A ReceivedMessage as a DeadLetter; read from its protobuf when it has one (see Subscription.pull)."""
    message = received.message
    return DeadLetter(subscription=subscription, ack_id=received.ack_id, message_id=message.message_id,
                      data=bytes(message.data), attributes=dict(message.attributes),
                      published_at=_published_at(message))


def _published_at(message: Any) -> datetime | None:
    published = message.publish_time
    if hasattr(published, "ToDatetime"):  # a protobuf Timestamp, always there: unset is the epoch
        published = published.ToDatetime(tzinfo=UTC) if message.HasField("publish_time") else None
    if not isinstance(published, datetime):
        return None
    return published if published.tzinfo else published.replace(tzinfo=UTC)


class Subscription:
    """Pull, ack and nack on one dead-letter subscription (the port to Pub/Sub)."""

    def __init__(self, subscriber: Any, project: str, name: str, *, emulator: bool, wait_seconds: float = 5.0):
        self.subscriber = subscriber
        self.name = name
        self.path = f"projects/{project}/subscriptions/{name}"
        self.emulator = emulator
        self.wait_seconds = wait_seconds

    def pull(self, max_messages: int) -> list[DeadLetter]:
        # The emulator answers an empty pull only at the deadline; return_immediately keeps a scan fast.
        # In the cloud it may return nothing while messages wait, so there a normal pull is used.
        from google.api_core.exceptions import DeadlineExceeded

        request: dict[str, Any] = {"subscription": self.path, "max_messages": max_messages}
        if self.emulator:
            request["return_immediately"] = True
        try:
            response = self.subscriber.pull(request=request, timeout=self.wait_seconds)
        except DeadlineExceeded:
            return []
        # The protobuf under the client's proto-plus answer: proto-plus wraps every field read, which cost
        # more than the pull itself on a batch of 100 (py-spy).
        received = getattr(response, "_pb", response).received_messages
        return [from_received(self.name, r) for r in received]

    def ack(self, letters: list[DeadLetter]) -> None:
        for start in range(0, len(letters), ACK_IDS_PER_REQUEST):
            chunk = letters[start:start + ACK_IDS_PER_REQUEST]
            self.subscriber.acknowledge(subscription=self.path, ack_ids=[m.ack_id for m in chunk])

    def nack(self, letters: list[DeadLetter]) -> None:
        self.lease(letters, 0)

    def lease(self, letters: list[DeadLetter], seconds: int) -> None:
        """Set the ack deadline of these messages to `seconds` from now (0 releases them)."""
        for start in range(0, len(letters), ACK_IDS_PER_REQUEST):
            chunk = letters[start:start + ACK_IDS_PER_REQUEST]
            self.subscriber.modify_ack_deadline(subscription=self.path, ack_ids=[m.ack_id for m in chunk],
                                                ack_deadline_seconds=seconds)


class _Acker:
    """Acknowledgements gathered into requests of up to ACK_IDS_PER_REQUEST, sent by a thread of their own.

    A request goes when it is full or when its first message has waited ACK_WITHIN_SECONDS,
    and everything left goes on `close`. The emulator spent ~4x the CPU per message on acks of
    100 as on acks of 1,000 (bench scratch); in the cloud it is ten times fewer requests. A
    failed request is kept as (how many, error) for the pass to raise.
    """

    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.failures: list[tuple[int, BaseException]] = []
        self._waiting: list[DeadLetter] = []
        self._first_waiting_at = 0.0
        self._closing = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, letters: list[DeadLetter]) -> None:
        with self._changed:
            if not self._waiting:
                self._first_waiting_at = time.monotonic()
            self._waiting += letters
            self._changed.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dlq-ack", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Send everything still waiting; return once every request has been answered."""
        with self._changed:
            self._closing = True
            self._changed.notify()
        if self._thread is not None:
            self._thread.join()

    def _next_request(self) -> list[DeadLetter] | None:
        """The next request's messages, once it is due; None once closed and nothing is left."""
        with self._changed:
            while True:
                due = self._first_waiting_at + ACK_WITHIN_SECONDS
                if self._waiting and (self._closing or len(self._waiting) >= ACK_IDS_PER_REQUEST
                                      or time.monotonic() >= due):
                    request = self._waiting[:ACK_IDS_PER_REQUEST]
                    self._waiting = self._waiting[ACK_IDS_PER_REQUEST:]
                    self._first_waiting_at = time.monotonic()  # the rest wait at most ACK_WITHIN_SECONDS more
                    return request
                if self._closing:
                    return None
                self._changed.wait(timeout=max(0.0, due - time.monotonic()) if self._waiting else None)

    def _run(self) -> None:
        while (request := self._next_request()) is not None:
            try:
                self.subscription.ack(request)
            except Exception as exc:
                self.failures.append((len(request), exc))


class Pass:
    """One walk over a subscription: each message seen once; what is not settled is released at the end.

    Pipelined, so a walk runs at the speed of its slowest step rather than of all of them
    added up: the next pulls are under way while the caller works on a batch, and
    acknowledgements go out in the background (`settle` returns at once). Leaving the pass
    waits for both, releases what it still holds, and raises if an acknowledgement failed.
    Only the Pub/Sub calls leave the caller's thread; the bookkeeping stays in it.

    Each held message's lease runs out ASSUMED_ACK_DEADLINE after its pull (monotonic clock,
    the subscription's ack deadline); `lease` renews it and `lease_left` says what is left.
    """

    def __init__(self, subscription: Subscription, max_messages: int = DEFAULT_MAX_SCAN,
                 pulls_in_flight: int = PULLS_IN_FLIGHT) -> None:
        self.subscription = subscription
        self.max_messages = max_messages
        self.pulls_in_flight = pulls_in_flight
        self._held: dict[str, DeadLetter] = {}
        self._leased_until: dict[str, float] = {}
        self._seen: set[str] = set()
        # Workers pull ahead; the acker sends acknowledgements in order.
        self._puller = ThreadPoolExecutor(max_workers=pulls_in_flight, thread_name_prefix="dlq-pull")
        self._acker = _Acker(subscription)
        self._pulls: deque[tuple[int, Future[tuple[float, list[DeadLetter]]]]] = deque()  # (asked for, pull)
        self._exhausted = False

    def __enter__(self) -> Pass:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _pull_ahead(self) -> None:
        """Keep `pulls_in_flight` pulls under way, asking in all for no more than the scan has left."""
        while not self._exhausted and len(self._pulls) < self.pulls_in_flight:
            wanted = min(PULL_BATCH, self.max_messages - len(self._seen) - sum(asked for asked, _ in self._pulls))
            if wanted <= 0:
                return
            self._pulls.append((wanted, self._puller.submit(self._pull, wanted)))

    def _pull(self, wanted: int) -> tuple[float, list[DeadLetter]]:
        pulled_at = time.monotonic()  # before the pull: the lease is counted from no later than this
        return pulled_at, self.subscription.pull(wanted)

    def _take_pull(self) -> list[DeadLetter]:
        """The oldest pull under way, its messages held (a message that came back after its lease ran out, again)."""
        _, pull = self._pulls.popleft()
        pulled_at, pulled = pull.result()
        for letter in pulled:
            self._held[letter.message_id] = letter
            self._leased_until[letter.message_id] = pulled_at + ASSUMED_ACK_DEADLINE
        return pulled

    def batches(self) -> Iterator[list[DeadLetter]]:
        """Each pull's messages not seen before in this pass, in the order the pulls were sent.

        A pull with nothing new ends the asking; what the pulls already under way bring is still
        walked (they may have leased the last messages before it came back empty)."""
        self._pull_ahead()
        while self._pulls:
            fresh = [m for m in self._take_pull() if m.message_id not in self._seen]
            if not fresh:
                self._exhausted = True
                continue
            self._seen.update(m.message_id for m in fresh)
            self._pull_ahead()
            yield fresh

    @property
    def seen(self) -> int:
        return len(self._seen)

    def _take(self, letters: list[DeadLetter]) -> list[DeadLetter]:
        """The held copies (the latest ack id, should a message have come back in this pass), no longer held."""
        for letter in letters:
            self._leased_until.pop(letter.message_id, None)
        return [self._held.pop(letter.message_id, letter) for letter in letters]

    def settle(self, letters: list[DeadLetter]) -> None:
        """Acknowledge in the background, within ACK_WITHIN_SECONDS: the messages leave the subscription."""
        if letters:
            self._acker.add(self._take(letters))

    def put_back(self, letters: list[DeadLetter]) -> None:
        """Nack now (a failed publish): they stay, and are not offered again in this pass."""
        if letters:
            self.subscription.nack(self._take(letters))

    def lease_left(self, letters: list[DeadLetter]) -> float:
        """Seconds until the first of these held messages' lease runs out."""
        now = time.monotonic()
        return min((self._leased_until.get(m.message_id, now) - now for m in letters), default=float("inf"))

    def lease(self, letters: list[DeadLetter], seconds: int) -> None:
        """Lease these held messages (the rest of a batch, not yet published) for `seconds` from now."""
        renewed_at = time.monotonic()
        self.subscription.lease([self._held.get(m.message_id, m) for m in letters], seconds)
        for letter in letters:
            self._leased_until[letter.message_id] = renewed_at + seconds

    def release(self) -> None:
        """Wait for the pulls under way and the acknowledgements; nack what is still held."""
        try:
            while self._pulls:
                self._take_pull()
        finally:
            self._puller.shutdown()
            self._acker.close()
            held, self._held = list(self._held.values()), {}
            self._leased_until.clear()
            self.subscription.nack(held)
        failed, self._acker.failures = self._acker.failures, []
        if failed:
            raise AckError(sum(count for count, _ in failed), failed[0][1])
