"""An HTTP function's answer, framework-neutral, and the (body, status, headers) tuple Flask takes.

Standard library only: the health check answers with it without loading the webhook edge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Response:
    """Framework-neutral answer; functions/ turns it into a Flask response."""

    status: int
    body: dict[str, Any] | str
    headers: dict[str, str] = field(default_factory=dict)


def flask_response(response: Response) -> tuple[str, int, dict[str, str]]:
    """(body, status, headers) — the tuple form functions-framework accepts."""
    headers = dict(response.headers)
    if isinstance(response.body, str):
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        return response.body, response.status, headers
    headers["Content-Type"] = "application/json"
    return json.dumps(response.body, ensure_ascii=False), response.status, headers
