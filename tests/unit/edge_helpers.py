"""Build edge requests without a server (the edge is framework-neutral)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from shared.config import Settings, load_settings
from shared.edge import Response, handle
from shared.inbound import Adapter, RawRequest
from shared.sources import generic_event
from shared.tenants import TenantDirectory
from tests.fakes import RecordingPublisher


def settings(**overrides: Any) -> Settings:
    return replace(load_settings(), **{"events_api_key": "test-key", "max_body_bytes": 4096, **overrides})


def request(body: Any = None, *, method: str = "POST", headers: dict[str, str] | None = None,
            raw: bytes | None = None, content_type: str | None = "application/json", path: str = "/") -> RawRequest:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    stream = io.BytesIO(data)
    return RawRequest(method=method, path=path, headers=headers or {}, content_type=content_type,
                      content_length=len(data), read_body=stream.read)


def call(adapter: Adapter, req: RawRequest, publisher: RecordingPublisher | None = None,
         **setting_overrides: Any) -> tuple[Response, RecordingPublisher]:
    publisher = publisher or RecordingPublisher()
    response = handle(req, function="test", adapter=adapter, publisher=publisher,
                      settings=settings(**setting_overrides))
    return response, publisher


def call_events(req: RawRequest, directory: TenantDirectory | None = None, publisher: RecordingPublisher | None = None,
                **setting_overrides: Any) -> tuple[Response, RecordingPublisher]:
    """The events function's pipeline; without a directory, no tenants document (only the tenant-less door)."""
    publisher = publisher or RecordingPublisher()
    configured = settings(**setting_overrides)
    tenants = directory or TenantDirectory(file=Path("/nonexistent/tenants.json"))
    response = handle(req, function="events", router=generic_event.router(lambda: tenants, lambda: configured),
                      publisher=publisher, settings=configured)
    return response, publisher
