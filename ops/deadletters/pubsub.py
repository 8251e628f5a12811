"""The port to Pub/Sub for dead-letter subscriptions: pull, ack, nack, lease, and one pass over them.

Every read is a pull without ack followed by a nack (modify_ack_deadline 0): the
emulator has no Monitoring API, so depth and oldest age come from this peek in both
places (capped by `max_scan`). One pass pulls each message once: the ones not settled
stay leased until the pass ends, so the pull reaches past them instead of getting
them back again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC
from typing import Any

from ops.deadletters.model import DEFAULT_MAX_SCAN, DeadLetter

PULL_BATCH = 100  # messages per pull
ACK_IDS_PER_REQUEST = 1000
# The dead-letter ops subscriptions' ack deadline (terraform/pubsub.tf, ops/provision.py): a pulled message's lease.
ASSUMED_ACK_DEADLINE = 60
MAX_ACK_DEADLINE = 600  # Pub/Sub's maximum


def from_received(subscription: str, received: Any) -> DeadLetter:
    message = received.message
    published = message.publish_time
    published_at = None
    if published is not None:
        published_at = published if published.tzinfo else published.replace(tzinfo=UTC)
    return DeadLetter(subscription=subscription, ack_id=received.ack_id, message_id=message.message_id,
                      data=bytes(message.data), attributes=dict(message.attributes), published_at=published_at)


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
        return [from_received(self.name, r) for r in response.received_messages]

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


class Pass:
    """One walk over a subscription: each message seen once; what is not settled is released at the end.

    `leased_until` is when the last pull's messages run out of lease (monotonic clock),
    taking the subscription's ack deadline as ASSUMED_ACK_DEADLINE; `lease` renews it.
    """

    def __init__(self, subscription: Subscription, max_messages: int = DEFAULT_MAX_SCAN) -> None:
        self.subscription = subscription
        self.max_messages = max_messages
        self.leased_until = 0.0
        self._held: dict[str, DeadLetter] = {}
        self._seen: set[str] = set()

    def __enter__(self) -> Pass:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def batches(self) -> Iterator[list[DeadLetter]]:
        while len(self._seen) < self.max_messages:
            pulled_at = time.monotonic()
            pulled = self.subscription.pull(min(PULL_BATCH, self.max_messages - len(self._seen)))
            self.leased_until = pulled_at + ASSUMED_ACK_DEADLINE
            fresh = [m for m in pulled if m.message_id not in self._seen]
            for letter in pulled:  # one that came back after its lease ran out is held again, not seen twice
                self._held[letter.message_id] = letter
            if not fresh:
                return
            self._seen.update(m.message_id for m in fresh)
            yield fresh

    @property
    def seen(self) -> int:
        return len(self._seen)

    def _take(self, letters: list[DeadLetter]) -> list[DeadLetter]:
        """The held copies (the latest ack id, should a message have come back in this pass), no longer held."""
        return [self._held.pop(letter.message_id, letter) for letter in letters]

    def settle(self, letters: list[DeadLetter]) -> None:
        """Acknowledge (one request per 1000): the messages leave the subscription."""
        self.subscription.ack(self._take(letters))

    def put_back(self, letters: list[DeadLetter]) -> None:
        """Nack now (a failed publish): they stay, and are not offered again in this pass."""
        self.subscription.nack(self._take(letters))

    def lease(self, letters: list[DeadLetter], seconds: int) -> None:
        """Lease these held messages (the rest of a batch, not yet published) for `seconds` from now."""
        renewed_at = time.monotonic()
        self.subscription.lease([self._held.get(m.message_id, m) for m in letters], seconds)
        self.leased_until = renewed_at + seconds

    def release(self) -> None:
        held, self._held = list(self._held.values()), {}
        self.subscription.nack(held)
