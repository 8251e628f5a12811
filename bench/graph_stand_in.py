"""A local stand-in for the Graph API's lead read (loopback, free port), for the soak and the tests.

The soak starts one and points its stack's META_GRAPH_BASE_URL at it, after registering every
lead id it will send and each tenant's page token; tests/fixtures/graph_stand_in.py keeps one per
test session.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse


class GraphStandIn:
    """`GET /<version>/<lead id>` answers the lead registered for that id when the bearer token is right."""

    def __init__(self) -> None:
        self.leads: dict[str, dict[str, Any]] = {}
        self.tokens: set[str] = set()
        self.requests: list[tuple[str, str]] = []  # (path, token)
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urlparse(self.path).path
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
                stand_in.requests.append((self.path, token))
                lead_id = path.rstrip("/").rsplit("/", 1)[-1]
                if token not in stand_in.tokens:
                    self._json(401, {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException",
                                               "code": 190}})
                elif lead_id not in stand_in.leads:
                    self._json(404, {"error": {"message": "Unsupported get request.", "type": "GraphMethodException",
                                               "code": 100}})
                else:
                    self._json(200, stand_in.leads[lead_id])

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

