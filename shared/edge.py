"""The webhook edge: the one request pipeline every HTTP function runs.

route (tenant and source from the path) -> method -> size -> content type -> proof of
origin on the raw bytes -> JSON -> source adapter (validate, normalise) -> publish each
envelope and wait for confirmation -> 202. Bad input is a 4xx that
names the fields; an unconfirmed publish is a 503 so the platform retries; the
database is never touched here.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from shared import storable
from shared.config import Settings
from shared.envelope import Envelope
from shared.inbound import (
    Adapter,
    EdgeError,
    Ignored,
    Inbound,
    Outcome,
    RawRequest,
    Reply,
    Route,
    Router,
    validation_fields,
)
from shared.log import bind, get_logger, log_context
from shared.publisher import EnvelopePublisher, PublishError
from shared.responses import Response

log = get_logger(__name__)

CORRELATION_HEADER = "X-Correlation-ID"
_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def correlation_id_from(headers: Mapping[str, str]) -> str:
    """Keep a caller's well-formed X-Correlation-ID, otherwise make a UUIDv4."""
    given = (headers.get(CORRELATION_HEADER) or "").strip()
    return given if _CORRELATION_ID.match(given) else str(uuid.uuid4())


def _is_json(content_type: str | None) -> bool:
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    return mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))


def handle(request: RawRequest, *, function: str, publisher: EnvelopePublisher, settings: Settings,
           adapter: Adapter | None = None, router: Router | None = None, tenant: str | None = None,
           methods: tuple[str, ...] = ("POST",)) -> Response:
    """Run one request through the pipeline: a fixed `adapter`, or a `router` that picks one per path."""
    correlation_id = correlation_id_from(request.headers)
    headers = {CORRELATION_HEADER: correlation_id}
    with log_context(function=function, correlation_id=correlation_id):
        try:
            if router is not None:
                route = router(request)
            elif adapter is not None:
                route = Route(tenant or settings.default_tenant, function, adapter, methods=methods)
            else:
                raise TypeError("handle() needs an adapter or a router")
            bind(tenant=route.tenant, source=route.source)
            outcome = _run(request, route, settings, correlation_id)
            if isinstance(outcome, Reply):
                return Response(outcome.status, outcome.body, {**headers, "Content-Type": outcome.content_type})
            if isinstance(outcome, Ignored):
                log.info("webhook acknowledged, nothing to publish",
                         extra={"reason": outcome.reason, "http_status": 200})
                return Response(200, {"status": "ignored", "reason": outcome.reason,
                                      "correlation_id": correlation_id}, headers)
            return _publish_all(outcome, publisher, correlation_id, headers)
        except EdgeError as exc:
            log.warning("webhook refused: %s", exc.message,
                        extra={"http_status": exc.status, "error_code": exc.error, "fields": exc.fields})
            body: dict[str, Any] = {"error": exc.error, "message": exc.message, "correlation_id": correlation_id}
            if exc.fields:
                body["fields"] = exc.fields
            retry = {"Retry-After": "5"} if exc.status == 503 else {}
            return Response(exc.status, body, {**headers, **retry})


def _run(request: RawRequest, route: Route, settings: Settings, correlation_id: str) -> Outcome:
    if request.method.upper() not in route.methods:
        raise EdgeError(405, "method_not_allowed", f"use {' or '.join(route.methods)}")
    if request.method.upper() == "GET":
        raw, body = b"", None
    else:
        raw = _read_raw(request, settings.max_body_bytes)
        if route.verify is not None:
            route.verify(request, raw)  # proof of origin, on the bytes as sent, before any parsing
        body = _parse_json(raw)
    inbound = Inbound(body=body, raw=raw, headers=request.headers, path=request.path, tenant=route.tenant,
                      correlation_id=correlation_id, settings=settings, query=request.query)
    try:
        return route.adapter(inbound)
    except ValidationError as exc:
        raise EdgeError(400, "invalid_request", "the request has invalid fields", validation_fields(exc)) from exc


def _read_raw(request: RawRequest, max_bytes: int) -> bytes:
    if request.content_length is not None and request.content_length > max_bytes:
        raise EdgeError(413, "payload_too_large", f"the body is over {max_bytes} bytes")
    if not _is_json(request.content_type):
        raise EdgeError(415, "unsupported_media_type", "send the body as application/json")
    raw = request.read_body(max_bytes + 1)
    if len(raw) > max_bytes:
        raise EdgeError(413, "payload_too_large", f"the body is over {max_bytes} bytes")
    return raw


def _parse_json(raw: bytes) -> Any:
    """The body as storable JSON: odd characters normalised, what cannot be stored refused naming its field."""
    try:
        return storable.loads(raw)
    except storable.Unstorable as exc:
        raise EdgeError(400, "invalid_request", "the body has a value that cannot be stored",
                        [{"field": exc.field, "message": exc.message}]) from exc
    except RecursionError as exc:
        raise EdgeError(400, "invalid_json", "the body is nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise EdgeError(400, "invalid_json", f"the body is not valid JSON: {storable.clean_text(str(exc))[:200]}"
                        ) from exc


def _publish_all(envelopes: Sequence[Envelope], publisher: EnvelopePublisher, correlation_id: str,
                 headers: dict[str, str]) -> Response:
    message_ids = []
    for envelope in envelopes:
        with log_context(event_id=envelope.event_id, event_type=envelope.event_type):
            try:
                message_ids.append(publisher.publish(envelope))
            except PublishError as exc:
                log.error("publish failed, asking the caller to retry",
                          extra={"http_status": 503, "error_detail": str(exc)})
                return Response(503, {"error": "publish_failed",
                                      "message": "the event could not be queued; retry later",
                                      "correlation_id": correlation_id}, {**headers, "Retry-After": "5"})
            log.info("event published", extra={"message_id": message_ids[-1], "http_status": 202})
    body: dict[str, Any] = {"status": "accepted", "event_id": envelopes[0].event_id, "correlation_id": correlation_id}
    if len(envelopes) > 1:
        body["event_ids"] = [e.event_id for e in envelopes]
    return Response(202, body, headers)
