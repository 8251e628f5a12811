"""Local stand-ins for the APIs the assistant talks to: OpenAI chat completions and the
WhatsApp providers' send endpoints. Real HTTP on 127.0.0.1 free ports, in a thread.

They answer in the services' own wire formats, so the real `openai` client and the
real senders are what the tests exercise; what the "model" says is decided by the test.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from ops.loopback import JsonHandler, serve, stop

Responder = Callable[[list[dict[str, Any]]], dict[str, Any]]


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any


class _StandIn:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        stand_in = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                recorded = Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with stand_in._lock:
                    stand_in.requests.append(recorded)
                self.answer_json(*stand_in.answer(recorded))

        self.server = serve(Handler)
        self.port = int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, request: Recorded) -> tuple[int, Any]:
        raise NotImplementedError

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def close(self) -> None:
        stop(self.server)


class OpenAIStandIn(_StandIn):
    """`POST /v1/chat/completions`: the JSON the responder returns becomes the message content,
    as a model answering with `response_format: json_schema` does. `down` answers 500;
    `delay` makes every answer slow (for the client's timeout)."""

    def __init__(self, responder: Responder | None = None) -> None:
        self.responder: Responder | None = responder
        self.down = False
        self.delay = 0.0
        super().__init__()

    def answer(self, request: Recorded) -> tuple[int, Any]:
        if request.path.rstrip("/") != "/v1/chat/completions":
            return 404, {"error": {"message": f"no route {request.path}", "type": "invalid_request_error"}}
        if self.delay:
            time.sleep(self.delay)
        if self.down or self.responder is None:
            return 500, {"error": {"message": "The server had an error", "type": "server_error"}}
        body = request.body
        schema = ((body.get("response_format") or {}).get("json_schema") or {})
        if (body.get("response_format") or {}).get("type") != "json_schema" or not schema.get("schema"):
            return 400, {"error": {"message": "response_format json_schema required", "type": "invalid_request_error"}}
        content = json.dumps(self.responder(body["messages"]), ensure_ascii=False)
        prompt_tokens = sum(len(str(m.get("content", ""))) // 4 for m in body["messages"])
        completion_tokens = len(content) // 4
        return 200, {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": content, "refusal": None}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    def calls(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.rstrip("/") == "/v1/chat/completions"]


@dataclass
class Sent:
    provider: str
    account: str
    to: str
    text: str
    headers: dict[str, str] = field(default_factory=dict)


_EVOLUTION = re.compile(r"^/message/sendText/(?P<instance>[^/]+)$")
_ZAPI = re.compile(r"^/instances/(?P<instance>[^/]+)/token/(?P<token>[^/]+)/send-text$")
_META = re.compile(r"^/(?P<version>v\d+\.\d+)/(?P<phone_number_id>\d+)/messages$")
_DIALOG360 = "/messages"
_GUPSHUP = "/wa/api/v1/msg"


class ProviderStandIn(_StandIn):
    """Evolution, Z-API, Meta Cloud API, 360dialog and Gupshup send endpoints; each checks its credentials.

    `credentials` maps provider -> the expected secret (Evolution apikey, Z-API
    instance token, Meta access token, 360dialog D360-API-KEY, Gupshup apikey).
    `failing` answers 500 to every send; `delay` makes every answer slow."""

    def __init__(self, credentials: dict[str, str]) -> None:
        self.credentials = credentials
        self.failing = False
        self.sent: list[Sent] = []
        self.delay = 0.0
        super().__init__()

    def answer(self, request: Recorded) -> tuple[int, Any]:
        if self.delay:
            time.sleep(self.delay)
        if self.failing:
            return 500, {"status": 500, "error": "Internal Server Error"}
        return self._answer(request)

    def _answer(self, request: Recorded) -> tuple[int, Any]:
        if request.path == _GUPSHUP:
            return self._gupshup(request)
        body = request.body if isinstance(request.body, dict) else {}
        if request.path == _DIALOG360:
            if request.headers.get("d360-api-key") != self.credentials.get("360dialog"):
                return 401, {"meta": {"success": False, "http_code": 401, "developer_message": "Invalid api key"}}
            if body.get("messaging_product") != "whatsapp" or body.get("type") != "text":
                return 400, {"error": {"message": "bad message", "code": 100}}
            self.sent.append(Sent("360dialog", "-", body["to"], body["text"]["body"], request.headers))
            return 200, {"messaging_product": "whatsapp", "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                         "messages": [{"id": f"wamid.{uuid.uuid4().hex}"}]}
        if m := _EVOLUTION.match(request.path):
            if request.headers.get("apikey") != self.credentials.get("evolution"):
                return 401, {"status": 401, "error": "Unauthorized"}
            if not body.get("number") or not body.get("text"):
                return 400, {"status": 400, "error": "Bad Request"}
            self.sent.append(Sent("evolution", m["instance"], body["number"], body["text"], request.headers))
            return 201, {"key": {"remoteJid": f"{body['number']}@s.whatsapp.net", "fromMe": True,
                                 "id": f"BAE5{uuid.uuid4().hex[:12].upper()}"},
                         "message": {"conversation": body["text"]}, "status": "PENDING"}
        if m := _ZAPI.match(request.path):
            if m["token"] != self.credentials.get("zapi"):
                return 401, {"error": "Unauthorized"}
            self.sent.append(Sent("zapi", m["instance"], body.get("phone", ""), body.get("message", ""),
                                  request.headers))
            return 200, {"zaapId": uuid.uuid4().hex.upper(), "messageId": uuid.uuid4().hex.upper(),
                         "id": uuid.uuid4().hex.upper()}
        if m := _META.match(request.path):
            if request.headers.get("authorization") != f"Bearer {self.credentials.get('meta')}":
                return 401, {"error": {"message": "Invalid OAuth access token", "code": 190}}
            if body.get("messaging_product") != "whatsapp" or body.get("type") != "text":
                return 400, {"error": {"message": "bad message", "code": 100}}
            self.sent.append(Sent("meta", m["phone_number_id"], body["to"], body["text"]["body"], request.headers))
            return 200, {"messaging_product": "whatsapp", "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                         "messages": [{"id": f"wamid.{uuid.uuid4().hex}"}]}
        return 404, {"error": f"no route {request.path}"}

    def _gupshup(self, request: Recorded) -> tuple[int, Any]:
        if request.headers.get("apikey") != self.credentials.get("gupshup"):
            return 401, {"status": "error", "message": "Authentication Failed"}
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return 400, {"status": "error", "message": "form-encoded body required"}
        form = dict(urllib.parse.parse_qsl(str(request.body)))
        message = json.loads(form.get("message") or "{}")
        if form.get("channel") != "whatsapp" or not form.get("destination") or message.get("type") != "text":
            return 400, {"status": "error", "message": "Invalid Request"}
        self.sent.append(Sent("gupshup", form.get("src.name", ""), form["destination"], message["text"],
                              request.headers))
        return 202, {"status": "submitted", "messageId": str(uuid.uuid4())}

    def clear(self) -> None:
        super().clear()
        self.sent.clear()

    def sent_to(self, number: str) -> list[Sent]:
        return [s for s in self.sent if s.to == number]


# --- Meta Graph API (Lead Ads) ---------------------------------------------------------
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

