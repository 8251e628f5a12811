"""What every provider sender shares: one JSON POST, and errors that make Pub/Sub retry."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

TIMEOUT_SECONDS = 15.0


class SendError(RuntimeError):
    """The provider did not accept the message; raised so the reply is retried, then dead-lettered."""


@dataclass(frozen=True)
class SentMessage:
    provider_message_id: str | None  # the id the provider gave the message, when it says


def post_json(url: str, body: dict[str, Any], headers: dict[str, str], *, what: str) -> Any:
    """POST `body` as JSON and return the decoded answer; any non-2xx or network error is a SendError."""
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(url, data=data, method="POST",  # noqa: S310 - configured https/loopback URL
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace")
        raise SendError(f"{what} answered {exc.code}: {detail}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise SendError(f"{what} unreachable: {type(exc).__name__}: {exc}") from exc
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {}
