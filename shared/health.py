"""Health: the instance is up; in detail, each event type's topic answers the publisher."""

from __future__ import annotations

from shared.publisher import EnvelopePublisher, get_publisher
from shared.responses import Response
from shared.topology import load_topology


def check(detail: bool, publisher: EnvelopePublisher | None = None) -> Response:
    if not detail:
        return Response(200, {"status": "ok"})
    topics = (publisher or get_publisher()).check_topics(load_topology().event_types)
    healthy = all(result == "ok" for result in topics.values())
    return Response(200 if healthy else 503, {"status": "ok" if healthy else "degraded", "topics": topics})
