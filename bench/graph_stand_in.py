"""A local stand-in for the Graph API's lead read (loopback, free port), for the soak and the tests.

The soak starts one and points its stack's META_GRAPH_BASE_URL at it, after registering every
lead id it will send and each tenant's page token; tests/fixtures/graph_stand_in.py keeps one per
test session.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from bench.loopback import JsonHandler, serve, stop


class GraphStandIn:
    """`GET /<version>/<lead id>` answers the lead registered for that id when the bearer token is right."""

    def __init__(self) -> None:
        self.leads: dict[str, dict[str, Any]] = {}
        self.tokens: set[str] = set()
        self.requests: list[tuple[str, str]] = []  # (path, token)
        stand_in = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                path = urlparse(self.path).path
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                stand_in.requests.append((self.path, token))
                lead_id = path.rstrip("/").rsplit("/", 1)[-1]
                if token not in stand_in.tokens:
                    self.answer_json(401, {"error": {"message": "Invalid OAuth access token.",
                                                     "type": "OAuthException", "code": 190}})
                elif lead_id not in stand_in.leads:
                    self.answer_json(404, {"error": {"message": "Unsupported get request.",
                                                     "type": "GraphMethodException", "code": 100}})
                else:
                    self.answer_json(200, stand_in.leads[lead_id])

        self.server = serve(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        stop(self.server)

