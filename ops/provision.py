"""Create the topology's topics and subscriptions on a Pub/Sub endpoint (the emulator).

The shapes Terraform creates in the cloud: a topic and a dead-letter topic per event type,
a subscription per (topic, subscriber) with its ack deadline and dead-letter policy, and a
pull subscription on every dead-letter topic for operators. One difference: locally the
subscriber subscriptions are pull subscriptions without a retry_policy, pushed by the
stack's own pusher (ops/pusher.py), which waits the retry policy's backoff itself; the
emulator's push would wait 100 ms on an idle subscription and stall on failures.

A subscription with its own `retry_policies` entry in the topology keeps that entry's
max_delivery_attempts here too; its backoff stays the local one (CT_*_BACKOFF_SECONDS),
so a local run compresses hours into minutes but keeps the same number of attempts.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace
from typing import Any

from shared.topology import RetryPolicy, Topology


@dataclass(frozen=True)
class DeliveryPolicy:
    """Local retry budget: about 1+2+4+8+10x16 s of backoff, so an outage of a minute or two
    (Postgres restarting, a writer restarting) costs retries, not dead letters."""

    max_delivery_attempts: int = 20
    min_backoff_seconds: int = 1
    max_backoff_seconds: int = 10
    ack_deadline_seconds: int = 60

    def for_subscription(self, own: RetryPolicy | None) -> DeliveryPolicy:
        """The subscription's own attempts from the topology, with this (local) policy's backoff."""
        return self if own is None else replace(self, max_delivery_attempts=own.max_delivery_attempts)

    @classmethod
    def from_env(cls) -> DeliveryPolicy:
        return cls(
            max_delivery_attempts=int(os.environ.get("CT_MAX_DELIVERY_ATTEMPTS", cls.max_delivery_attempts)),
            min_backoff_seconds=int(os.environ.get("CT_MIN_BACKOFF_SECONDS", cls.min_backoff_seconds)),
            max_backoff_seconds=int(os.environ.get("CT_MAX_BACKOFF_SECONDS", cls.max_backoff_seconds)),
            ack_deadline_seconds=int(os.environ.get("CT_ACK_DEADLINE_SECONDS", 60)),
        )


def push_endpoint(function_url: str, project: str, topic: str) -> str:
    """functions-framework names the CloudEvent's topic from this path."""
    return f"{function_url.rstrip('/')}/projects/{project}/topics/{topic}"


@dataclass(frozen=True)
class Route:
    """One subscriber subscription: its topic, the function it delivers to, where, and how it retries."""

    subscription: str
    topic: str
    dead_letter_topic: str
    function: str
    endpoint: str
    policy: DeliveryPolicy


def routes(project: str, topology: Topology, function_urls: dict[str, str],
           policy: DeliveryPolicy | None = None) -> list[Route]:
    policy = policy or DeliveryPolicy.from_env()
    return [Route(name, et.topic, et.dead_letter_topic, function,
                  push_endpoint(function_urls[function], project, et.topic),
                  policy.for_subscription(et.retry_policies.get(name)))
            for et in topology.event_types.values() for name, function in et.subscriptions.items()]


def provision(project: str, topology: Topology, function_urls: dict[str, str],
              policy: DeliveryPolicy | None = None) -> list[Route]:
    """Create every topic and subscription (an existing push subscription becomes pull); returns the routes."""
    from google.api_core.exceptions import AlreadyExists
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    found = routes(project, topology, function_urls, policy)
    try:
        for et in topology.event_types.values():
            for topic in (et.topic, et.dead_letter_topic):
                with contextlib.suppress(AlreadyExists):
                    publisher.create_topic(name=publisher.topic_path(project, topic))
        for route in found:
            path = subscriber.subscription_path(project, route.subscription)
            try:
                subscriber.create_subscription(request=subscription_request(project, route))
            except AlreadyExists:
                subscriber.modify_push_config(subscription=path, push_config={})
        for et in topology.event_types.values():
            dlq_sub = subscriber.subscription_path(project, et.dead_letter_subscription)
            with contextlib.suppress(AlreadyExists):
                subscriber.create_subscription(request={
                    "name": dlq_sub, "topic": publisher.topic_path(project, et.dead_letter_topic),
                    "ack_deadline_seconds": 60})
    finally:
        subscriber.close()
    return found


def subscription_request(project: str, route: Route) -> dict[str, Any]:
    """A pull subscription for the pusher: the route's ack deadline and dead-letter policy, no retry_policy."""
    return {"name": f"projects/{project}/subscriptions/{route.subscription}",
            "topic": f"projects/{project}/topics/{route.topic}",
            "ack_deadline_seconds": route.policy.ack_deadline_seconds,
            "dead_letter_policy": {"dead_letter_topic": f"projects/{project}/topics/{route.dead_letter_topic}",
                                   "max_delivery_attempts": route.policy.max_delivery_attempts}}
