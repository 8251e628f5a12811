"""What every provider sender shares: one HTTP POST, and errors that say whether the message may have gone out."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

TIMEOUT_SECONDS = 15.0


class SendError(RuntimeError):
    """The provider did not accept the message; raised so the reply is retried, then dead-lettered.

    `maybe_sent` is True when the request may have reached the provider and been acted on
    (a timeout, a connection cut mid-answer): the outbox then reconciles before sending again.
    """

    def __init__(self, message: str, *, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


@dataclass(frozen=True)
class SentMessage:
    provider_message_id: str | None  # the id the provider gave the message, when it says


def post_json(url: str, body: dict[str, Any], headers: dict[str, str], *, what: str) -> Any:
    """POST `body` as JSON and return the decoded answer; any non-2xx or network error is a SendError."""
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return _post(url, data, {"Content-Type": "application/json", **headers}, what)


def post_form(url: str, fields: dict[str, str], headers: dict[str, str], *, what: str) -> Any:
    """POST `fields` form-encoded (Gupshup's API) and return the decoded JSON answer."""
    data = urllib.parse.urlencode(fields).encode("utf-8")
    return _post(url, data, {"Content-Type": "application/x-www-form-urlencoded", **headers}, what)


def _post(url: str, data: bytes, headers: dict[str, str], what: str) -> Any:
    request = urllib.request.Request(url, data=data, method="POST", headers=headers)  # noqa: S310 - configured URL
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace")
        raise SendError(f"{what} answered {exc.code}: {detail}") from exc
    except urllib.error.URLError as exc:  # no connection was made: nothing reached the provider
        raise SendError(f"{what} unreachable: {type(exc.reason).__name__}: {exc.reason}") from exc
    except (TimeoutError, http.client.HTTPException, OSError) as exc:  # sent, answer lost: outcome unknown
        raise SendError(f"{what} gave no answer: {type(exc).__name__}: {exc}", maybe_sent=True) from exc
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {}
