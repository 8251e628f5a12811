"""Fakes at the port boundary (publisher), for unit tests of the edge only."""

from __future__ import annotations

from collections.abc import Iterable

from shared.envelope import Envelope
from shared.publisher import PublishError


class RecordingPublisher:
    """Confirms every publish (or refuses all, with fail=True) and remembers what it got."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.published: list[Envelope] = []

    def publish(self, envelope: Envelope, extra_attributes: dict[str, str] | None = None) -> str:
        if self.fail:
            raise PublishError("publish of test not confirmed: DeadlineExceeded")
        self.published.append(envelope)
        return str(len(self.published))

    def check_topics(self, event_types: Iterable[str]) -> dict[str, str]:
        return {et: "NotFound: 404" if self.fail else "ok" for et in event_types}
