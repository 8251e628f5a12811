"""The Meta Graph API, for the one call Control Tower makes: read a Lead Ads lead.

The base URL is configurable (`META_GRAPH_BASE_URL`) so tests point it at a local
stand-in; the page token travels in the Authorization header, never in a URL that a
log line or a proxy could keep.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from shared.payloads import GRAPH_ID

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_VERSION = "v23.0"
LEAD_FIELDS = "id,created_time,field_data,form_id,ad_id,adset_id,campaign_id,is_organic,platform"
_ID = re.compile(GRAPH_ID)
_EXPIRED_TOKEN = 190  # Graph API error code for an invalid or expired access token


class GraphError(RuntimeError):
    """The Graph API did not give the lead; raised so Pub/Sub retries and finally dead-letters."""

    def __init__(self, message: str, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code

    @property
    def token_rejected(self) -> bool:
        return self.status == 401 or self.code == _EXPIRED_TOKEN


def fetch_lead(leadgen_id: str, token: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """`GET {base}/{version}/{leadgen_id}?fields=...` with the page token."""
    if not _ID.match(leadgen_id):
        raise GraphError(f"{leadgen_id!r} is not a lead id")
    base = (os.environ.get("META_GRAPH_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    version = os.environ.get("META_GRAPH_VERSION") or DEFAULT_VERSION
    url = f"{base}/{version}/{quote(leadgen_id)}?fields={quote(LEAD_FIELDS, safe=',')}"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 - https or a test stand-in
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            data = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise _graph_error(exc) from exc
    except (OSError, ValueError) as exc:
        raise GraphError(f"Graph API unreachable or unreadable: {type(exc).__name__}: {exc}") from exc
    if not isinstance(data, dict):
        raise GraphError("Graph API answered something that is not a lead")
    return data


def _graph_error(exc: urllib.error.HTTPError) -> GraphError:
    code = None
    detail = ""
    try:
        error = json.loads(exc.read()).get("error") or {}
        code = int(error["code"]) if "code" in error else None
        detail = f" {error.get('type', '')} code {code}: {str(error.get('message', ''))[:200]}"
    except (ValueError, AttributeError, TypeError, OSError):
        pass
    return GraphError(f"Graph API answered {exc.code}{detail}", status=exc.code, code=code)
