"""Publish envelopes to their event type's topic and wait for Pub/Sub to confirm.

The client is created on first use (a function that never publishes never pays for
it) and honours PUBSUB_EMULATOR_HOST, so the same code runs against the emulator.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from shared.instance import PerInstance
from shared.log import get_logger
from shared.topology import Topology, load_topology

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import PublisherClient

    from shared.envelope import Envelope  # what it publishes; a caller has it loaded already

log = get_logger(__name__)


class PublishError(RuntimeError):
    """Pub/Sub did not confirm a publish; the caller answers 503 so the platform retries."""


RawMessage = tuple[str, bytes, dict[str, str]]  # (topic name, data, attributes)


class EnvelopePublisher(Protocol):
    def publish(self, envelope: Envelope, extra_attributes: dict[str, str] | None = None) -> str: ...

    def check_topics(self, event_types: Iterable[str]) -> dict[str, str]: ...


def _pubsub_client() -> PublisherClient:
    from google.cloud import pubsub_v1

    # The edge waits for each confirmation, so a long batch window only adds latency.
    return pubsub_v1.PublisherClient(batch_settings=pubsub_v1.types.BatchSettings(max_latency=0.005, max_messages=100))


class PubSubPublisher:
    def __init__(self, project_id: str, timeout_seconds: float, topology: Topology | None = None) -> None:
        self.project_id = project_id
        self.timeout_seconds = timeout_seconds
        self.topology = topology or load_topology()
        self._client = PerInstance(_pubsub_client)

    @property
    def client(self) -> PublisherClient:
        return self._client.get()

    def topic_path(self, event_type: str) -> str:
        return f"projects/{self.project_id}/topics/{self.topology.event_type(event_type).topic}"

    def publish(self, envelope: Envelope, extra_attributes: dict[str, str] | None = None) -> str:
        """Publish and block until confirmed; returns the Pub/Sub message id."""
        attributes = {**envelope.attributes(), **(extra_attributes or {})}
        try:
            future = self.client.publish(self.topic_path(envelope.event_type), envelope.to_bytes(), **attributes)
            return str(future.result(timeout=self.timeout_seconds))
        except Exception as exc:
            raise PublishError(f"publish of {envelope.event_type} not confirmed: {type(exc).__name__}: {exc}") from exc

    def publish_raw(self, topic: str, data: bytes, attributes: dict[str, str]) -> str:
        """Publish bytes as they are to a named topic (redrive keeps the original body)."""
        try:
            future = self.client.publish(f"projects/{self.project_id}/topics/{topic}", data, **attributes)
            return str(future.result(timeout=self.timeout_seconds))
        except Exception as exc:
            raise PublishError(f"publish to {topic} not confirmed: {type(exc).__name__}: {exc}") from exc

    def publish_raw_batch(self, messages: Sequence[RawMessage]) -> list[str | PublishError]:
        """Publish every message at once, then wait for each confirmation; per message, its id or its error.

        The client batches what is published together (up to max_messages per request), so
        the confirmations come back in a few round trips. The waits share one deadline,
        `timeout_seconds` after the last publish call: a batch takes at most that long. Never
        raises for a message: a failed or unconfirmed one is its PublishError in the answer.
        """
        futures: list[Any] = []
        for topic, data, attributes in messages:
            try:
                futures.append(self.client.publish(f"projects/{self.project_id}/topics/{topic}", data, **attributes))
            except Exception as exc:
                futures.append(exc)
        deadline = time.monotonic() + self.timeout_seconds
        results: list[str | PublishError] = []
        for (topic, _, _), future in zip(messages, futures, strict=True):
            error = future if isinstance(future, Exception) else None
            if error is None:
                try:
                    results.append(str(future.result(timeout=max(0.0, deadline - time.monotonic()))))
                    continue
                except Exception as exc:
                    error = exc
            results.append(PublishError(f"publish to {topic} not confirmed: {type(error).__name__}: {error}"))
        return results

    def check_topics(self, event_types: Iterable[str]) -> dict[str, str]:
        """'ok' or the error, per event type's topic (the detailed health check)."""
        results: dict[str, str] = {}
        for event_type in event_types:
            try:
                # No client retry: its default keeps retrying UNAVAILABLE for 60 s per topic, so a detailed
                # health check against an unreachable Pub/Sub hung for minutes instead of answering 503.
                self.client.get_topic(topic=self.topic_path(event_type), timeout=self.timeout_seconds, retry=None)
                results[event_type] = "ok"
            except Exception as exc:
                results[event_type] = f"{type(exc).__name__}: {str(exc)[:200]}"
        return results


def _instance_publisher() -> PubSubPublisher:
    from shared.config import get_settings

    settings = get_settings()
    return PubSubPublisher(settings.project_id, settings.publish_timeout_seconds)


_publisher: PerInstance[PubSubPublisher] = PerInstance(_instance_publisher)


def get_publisher() -> PubSubPublisher:
    """The instance's publisher, made on first use."""
    return _publisher.get()
