"""Structured logging: one JSON object per line in Cloud Logging's format.

Context fields (correlation_id, event_id, event_type, function, tenant) are bound
with `log_context` and ride on every line written inside it. Free text and extra
fields pass through `mask_text`, so phones and e-mails never reach the logs.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from shared.masking import mask_text

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("ct_log_context", default={})  # noqa: B039

# Identifiers never contain personal data and must stay searchable as they are.
_UNMASKED = {"correlation_id", "event_id", "event_type", "function", "tenant", "message_id", "lead_id",
             "status", "event_status", "attempts", "http_status", "topic", "subscription", "source"}

_SEVERITY = {"DEBUG": "DEBUG", "INFO": "INFO", "WARNING": "WARNING", "ERROR": "ERROR", "CRITICAL": "CRITICAL"}
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _clean(key: str, value: Any) -> Any:
    if key in _UNMASKED or value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(key, v) for v in value]
    return mask_text(str(value))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "severity": _SEVERITY.get(record.levelname, "DEFAULT"),
            "message": mask_text(record.getMessage()),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "logger": record.name,
        }
        for key, value in _context.get().items():
            entry[key] = _clean(key, value)
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = _clean(key, value)
        if record.exc_info:
            entry["error"] = mask_text(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class JsonLinesHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that formats a record before taking the handler's lock, not while holding it.

    Concurrent requests (gunicorn threads) log through the one handler; formatting a line (masking,
    JSON) under its lock made every other request thread wait for it.
    """

    def handle(self, record: logging.LogRecord) -> bool:
        if not self.filter(record):
            return False
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return True
        with self.lock:  # type: ignore[union-attr]
            try:
                self.stream.write(line)
                self.flush()
            except Exception:
                self.handleError(record)
        return True


_configured_level: str | None = None


def _skip_what_the_line_never_shows() -> None:
    """Stop the logging module looking up, for every record, what no JSON line carries: the calling
    file and line (a walk up the stack), the thread, the process id (a system call) and process name.

    The Logging HOWTO's own "Optimization" switches. They were ~40% of writing a line: at one line
    per request, ~15 us of every webhook's CPU, held under the GIL the request threads share.
    """
    logging._srcfile = None  # the HOWTO's documented switch for the caller lookup
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def configure_logging(level: str = "INFO") -> None:
    """Route the root logger to stdout as JSON lines.

    Called on every request, so it does nothing once set up at that level: setting a level
    clears every logger's level cache.
    """
    global _configured_level
    if _configured_level == level:
        return
    root = logging.getLogger()
    if _configured_level is None:
        _skip_what_the_line_never_shows()
        handler = JsonLinesHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        root.handlers = [handler]
    root.setLevel(level)
    _configured_level = level


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Bind fields to every log line written inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to the current context (inside a `log_context` block)."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
