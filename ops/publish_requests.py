"""Publish a batch of raw messages as whole Publish requests, for the ops commands that move many at once.

`PubSubPublisher.publish_raw_batch` goes through the client's batching layer: a future, a
proto-plus message and a lock round per message, ~70 us of Python each (py-spy), ten times
what the bytes cost. A redrive or a replay already holds its batch, so here it is sent as it
is: one Publish request per topic (Pub/Sub's limits: 1,000 messages, 10 MB), built as a
protobuf and sent through the same client's generated API (its channel, credentials and
retry policy). The answer keeps `publish_raw_batch`'s contract: per message, its id or its
PublishError; a request that fails fails each of its messages, and none is reported
confirmed unless Pub/Sub answered its id.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from shared.publisher import PublishError, PubSubPublisher, RawMessage

MAX_MESSAGES_PER_REQUEST = 1000  # Pub/Sub's limit per Publish request
MAX_BYTES_PER_REQUEST = 9 * 1024 * 1024  # under its 10 MB, leaving room for the request's own framing


def _transient() -> Any:
    """The errors the client's own publish retries (google.pubsub_v1's generated transport)."""
    from google.api_core import exceptions, retry

    return retry.if_exception_type(exceptions.Aborted, exceptions.Cancelled, exceptions.DeadlineExceeded,
                                   exceptions.InternalServerError, exceptions.ResourceExhausted,
                                   exceptions.ServiceUnavailable, exceptions.Unknown)


class RequestPublisher:
    """A batch's messages in as few Publish requests as the limits allow, through `publisher`'s client.

    Each request is retried on the client's transient errors, and gives up `timeout_seconds`
    after it was first sent.
    """

    def __init__(self, publisher: PubSubPublisher) -> None:
        from google.api_core import retry

        self.publisher = publisher
        self.timeout_seconds = publisher.timeout_seconds
        self._retry = retry.Retry(predicate=_transient(), initial=0.1, maximum=5.0, multiplier=4,
                                  timeout=publisher.timeout_seconds)

    def publish_raw_batch(self, messages: Sequence[RawMessage]) -> list[str | PublishError]:
        """Per message, in order, its new message id or the PublishError of its request; never raises for one."""
        results: list[str | PublishError] = [PublishError("not sent")] * len(messages)  # each position is set below
        for topic, positions in _requests(messages):
            try:
                ids = self._publish(topic, [messages[i] for i in positions])
            except Exception as exc:
                error = PublishError(f"publish to {topic} not confirmed: {type(exc).__name__}: {exc}")
                for i in positions:
                    results[i] = error
                continue
            for i, message_id in zip(positions, ids, strict=True):
                results[i] = message_id
        return results

    def _publish(self, topic: str, messages: list[RawMessage]) -> list[str]:
        from google.pubsub_v1 import types
        from google.pubsub_v1.services.publisher import PublisherClient as GapicPublisher

        request = types.PublishRequest.pb()(topic=f"projects/{self.publisher.project_id}/topics/{topic}")
        for _, data, attributes in messages:
            message = request.messages.add()
            message.data = data
            message.attributes.update(attributes)
        # The Publish RPC of the same client: its own `publish` is the batching layer's, and `.api` is deprecated.
        response = GapicPublisher.publish(self.publisher.client, request=types.PublishRequest.wrap(request),
                                          retry=self._retry, timeout=self.timeout_seconds)
        ids = list(types.PublishResponse.pb(response).message_ids)
        if len(ids) != len(messages):  # never seen; without an id per message nothing counts as confirmed
            raise PublishError(f"Pub/Sub answered {len(ids)} message ids for {len(messages)} messages")
        return ids


def _requests(messages: Sequence[RawMessage]) -> Iterator[tuple[str, list[int]]]:
    """(topic, positions in `messages`) per request: grouped by topic, in order, within the request limits."""
    by_topic: dict[str, list[int]] = {}
    for i, (topic, _, _) in enumerate(messages):
        by_topic.setdefault(topic, []).append(i)
    for topic, positions in by_topic.items():
        request: list[int] = []
        size = 0
        for i in positions:
            _, data, attributes = messages[i]
            cost = len(data) + sum(len(k.encode()) + len(v.encode()) for k, v in attributes.items()) + 64
            if request and (len(request) >= MAX_MESSAGES_PER_REQUEST or size + cost > MAX_BYTES_PER_REQUEST):
                yield topic, request
                request, size = [], 0
            request.append(i)
            size += cost
        if request:
            yield topic, request
