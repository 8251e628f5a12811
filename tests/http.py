"""Raw HTTP for tests, the way curl or a platform sends it (no client library smoothing)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def send(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
         raw: bytes | None = None, timeout: float = 30) -> HttpResult:
    parsed = urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    try:
        conn.request(method, parsed.path + (f"?{parsed.query}" if parsed.query else "") or "/", body=data,
                     headers=all_headers)
        response = conn.getresponse()
        return HttpResult(response.status, {k.lower(): v for k, v in response.getheaders()},
                          response.read().decode("utf-8", "replace"))
    finally:
        conn.close()


def post(url: str, body: Any = None, **kwargs: Any) -> HttpResult:
    return send("POST", url, body, **kwargs)
