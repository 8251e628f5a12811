"""Local stand-ins of the Google APIs the cloud code paths call, for the REAL client libraries.

Each is a small HTTP server on 127.0.0.1 (a free port, a daemon thread) speaking the public
REST shape closely enough for the official client: the product points the client at it
through its ordinary endpoint setting (SECRET_MANAGER_ENDPOINT, ...), never a test branch.

- `Credentials`: a service-account key file whose `token_uri` is the `OAuthStandIn`, so
  Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS) work offline; every
  stand-in checks the bearer token: one the OAuth stand-in issued, or a JWT self-signed
  with the key (what GAPIC clients send for service accounts).
- `SecretManagerStandIn`: `projects/*/secrets/*/versions/*:access` and `:addVersion`.
- `LoggingStandIn`: `entries:list` for the filters `ctower trace` writes (correlation ids and a time
  window), paged; anything else is refused, so a changed filter shape fails the test.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

from ops.loopback import JsonHandler, serve, stop

SERVICE_ACCOUNT = "ct-writer@ct-standin.iam.gserviceaccount.com"


def _error(code: int, status: str, message: str) -> tuple[int, dict[str, Any]]:
    """Google's JSON error body (google.rpc.Status over HTTP): api_core maps it to its exception class."""
    return code, {"error": {"code": code, "message": message, "status": status}}


class Credentials:
    """A service-account key (made here) and the tokens issued for it: what the stand-ins accept."""

    def __init__(self, email: str = SERVICE_ACCOUNT) -> None:
        self.email = email
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.tokens: dict[str, tuple[str, str, float]] = {}  # access token -> (email, scopes, expiry)
        self._lock = threading.Lock()

    def key_file(self, directory: Path, token_uri: str) -> Path:
        """A JSON key file as `gcloud iam service-accounts keys create` writes it, with our token_uri."""
        pem = self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode()
        path = directory / "service-account.json"
        path.write_text(json.dumps({
            "type": "service_account", "project_id": self.email.split("@")[1].split(".")[0],
            "private_key_id": secrets.token_hex(8), "private_key": pem, "client_email": self.email,
            "client_id": "1234567890", "token_uri": token_uri,
        }), encoding="utf-8")
        return path

    def issue(self, assertion: str, lifetime: int) -> tuple[str, str]:
        """Exchange a signed JWT assertion (RFC 7523) for an access token; raises ValueError if it is not ours."""
        claims = jwt.decode(assertion, certs=self.public_pem, verify=True, audience=None)  # type: ignore[no-untyped-call]
        if claims.get("iss") != self.email:
            raise ValueError(f"assertion issued by {claims.get('iss')}, not {self.email}")
        token = "ya29.standin-" + secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = (self.email, str(claims.get("scope", "")), time.time() + lifetime)
        return token, str(claims.get("scope", ""))

    def principal(self, authorization: str | None, scope: str | None = None) -> str | None:
        """Who this `Authorization: Bearer ...` header is, or None (unknown, expired, or lacking `scope`)."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        token = authorization.removeprefix("Bearer ").strip()
        with self._lock:
            issued = self.tokens.get(token)
        if issued is not None:
            email, scopes, expiry = issued
            if time.time() >= expiry or (scope and scope not in scopes.split()):
                return None
            return email
        try:  # a self-signed JWT (GAPIC clients with a service-account key)
            claims = jwt.decode(token, certs=self.public_pem, verify=True, audience=None)  # type: ignore[no-untyped-call]
        except ValueError:
            return None
        return str(claims["iss"]) if claims.get("iss") == self.email else None


@dataclass
class Recorded:
    method: str
    path: str
    principal: str | None
    body: Any


class StandIn:
    """An HTTP server whose `route(method, path, query, body, headers)` answers (status, JSON)."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        stand_in = self

        class Handler(JsonHandler):
            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                parsed = urlparse(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer = stand_in.route(method, parsed.path, parse_qs(parsed.query), body, headers)
                self.answer_json(status, answer)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self.server = serve(Handler)
        self.port = int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def record(self, method: str, path: str, principal: str | None, body: Any) -> None:
        with self._lock:
            self.requests.append(Recorded(method, path, principal, body))

    scope: str | None = None  # the OAuth scope every call needs (None: any token of ours)

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any,
              headers: dict[str, str]) -> tuple[int, Any]:
        """Record the call; 401 without a valid bearer token, as Google APIs answer; else `answer`."""
        principal = self.credentials.principal(headers.get("authorization"), scope=self.scope)
        self.record(method, path, principal, body)
        if principal is None:
            return _error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        return self.answer(method, path, body)

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        raise NotImplementedError

    def close(self) -> None:
        stop(self.server)


class OAuthStandIn(StandIn):
    """`POST /token` (grant jwt-bearer): Google's OAuth 2.0 token endpoint for service accounts."""

    def __init__(self, credentials: Credentials, lifetime: int = 3600) -> None:
        self.lifetime = lifetime
        super().__init__(credentials)

    def route(self, method: str, path: str, query: dict[str, list[str]], body: Any,
              headers: dict[str, str]) -> tuple[int, Any]:
        form = parse_qs(body) if isinstance(body, str) else {}
        if method != "POST" or path != "/token":
            return 404, {"error": "not_found"}
        assertion = (form.get("assertion") or [""])[0]
        try:
            token, scope = self.credentials.issue(assertion, self.lifetime)
        except ValueError as exc:
            return 400, {"error": "invalid_grant", "error_description": str(exc)}
        self.record(method, path, self.credentials.email, {"scope": scope})
        return 200, {"access_token": token, "expires_in": self.lifetime, "token_type": "Bearer"}


_ACCESS = re.compile(r"^/v1/projects/(?P<project>[^/]+)/secrets/(?P<secret>[^/:]+)"
                     r"/versions/(?P<version>[^/:]+):access$")
_ADD = re.compile(r"^/v1/projects/(?P<project>[^/]+)/secrets/(?P<secret>[^/:]+):addVersion$")


@dataclass
class _Secret:
    versions: list[bytes] = field(default_factory=list)


class SecretManagerStandIn(StandIn):
    """Secret Manager v1 over REST: access a version (`latest` or a number), add a version.

    `denied` names secrets the caller may not read (403 PERMISSION_DENIED, as without
    roles/secretmanager.secretAccessor); a secret never created, or with no version, is
    404 NOT_FOUND as in the real API.
    """

    def __init__(self, credentials: Credentials, project: str) -> None:
        self.project = project
        self.secrets: dict[str, _Secret] = {}
        self.denied: set[str] = set()
        super().__init__(credentials)

    def create(self, name: str, value: str | None = None) -> None:
        """`gcloud secrets create` (+ `versions add` when a value is given)."""
        self.secrets.setdefault(name, _Secret())
        if value is not None:
            self.secrets[name].versions.append(value.encode("utf-8"))

    def latest(self, name: str) -> str:
        return self.secrets[name].versions[-1].decode("utf-8")

    def accesses(self, name: str) -> int:
        return sum(1 for r in self.requests if r.method == "GET" and f"/secrets/{name}/" in r.path)

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "GET" and (m := _ACCESS.match(path)):
            return self._access(m["project"], m["secret"], m["version"])
        if method == "POST" and (m := _ADD.match(path)):
            return self._add(m["project"], m["secret"], body)
        return _error(404, "NOT_FOUND", f"no route {method} {path}")

    def _check(self, project: str, secret: str) -> tuple[int, dict[str, Any]] | None:
        if project != self.project:
            return _error(403, "PERMISSION_DENIED", f"Permission denied on project {project}.")
        if secret in self.denied:
            return _error(403, "PERMISSION_DENIED", f"Permission 'secretmanager.versions.access' denied for "
                                                    f"resource 'projects/{project}/secrets/{secret}/versions/latest'")
        return None

    def _access(self, project: str, secret: str, version: str) -> tuple[int, Any]:
        if (problem := self._check(project, secret)) is not None:
            return problem
        stored = self.secrets.get(secret)
        if stored is None or not stored.versions:
            return _error(404, "NOT_FOUND", f"Secret [projects/{project}/secrets/{secret}] not found or has no "
                                            "versions.")
        index = len(stored.versions) if version == "latest" else int(version)
        if not 1 <= index <= len(stored.versions):
            return _error(404, "NOT_FOUND", f"Secret Version [projects/{project}/secrets/{secret}/versions/"
                                            f"{version}] not found.")
        return 200, {"name": f"projects/{project}/secrets/{secret}/versions/{index}",
                     "payload": {"data": base64.b64encode(stored.versions[index - 1]).decode()}}

    def _add(self, project: str, secret: str, body: Any) -> tuple[int, Any]:
        if (problem := self._check(project, secret)) is not None:
            return problem
        stored = self.secrets.get(secret)
        if stored is None:
            return _error(404, "NOT_FOUND", f"Secret [projects/{project}/secrets/{secret}] not found.")
        try:
            data = base64.b64decode((body or {})["payload"]["data"], validate=True)
        except (KeyError, TypeError, ValueError):
            return _error(400, "INVALID_ARGUMENT", "payload.data must be base64")
        stored.versions.append(data)
        return 200, {"name": f"projects/{project}/secrets/{secret}/versions/{len(stored.versions)}",
                     "state": "ENABLED", "createTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


_LOG_FILTER = re.compile(r'^jsonPayload\.correlation_id=(?:"(?P<one>[^"]+)"|\((?P<many>"[^"]+"(?: OR "[^"]+")*)\))'
                         r'(?: AND timestamp>="(?P<since>[^"]+)")?(?: AND timestamp<="(?P<until>[^"]+)")?$')


class LoggingStandIn(StandIn):
    """Cloud Logging v2 `POST /v2/entries:list` over the entries given to `ingest` (as Cloud Run would)."""

    def __init__(self, credentials: Credentials, project: str) -> None:
        self.project = project
        self.entries: list[dict[str, Any]] = []
        super().__init__(credentials)

    def ingest(self, line: str, service: str, timestamp: str) -> None:
        """One stdout line of a function, as Cloud Logging stores a structured (JSON) line."""
        payload = json.loads(line)
        self.entries.append({
            "logName": f"projects/{self.project}/logs/run.googleapis.com%2Fstdout",
            "resource": {"type": "cloud_run_revision", "labels": {"service_name": service,
                                                                   "project_id": self.project}},
            "timestamp": timestamp, "receiveTimestamp": timestamp, "severity": payload.get("severity", "DEFAULT"),
            "insertId": secrets.token_hex(8), "jsonPayload": payload})

    def list_calls(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/v2/entries:list"]

    def answer(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if (method, path) != ("POST", "/v2/entries:list"):
            return _error(404, "NOT_FOUND", f"no route {method} {path}")
        request = body or {}
        if request.get("resourceNames") != [f"projects/{self.project}"]:
            return _error(403, "PERMISSION_DENIED", f"resourceNames {request.get('resourceNames')}")
        m = _LOG_FILTER.match(request.get("filter", ""))
        if m is None:
            return _error(400, "INVALID_ARGUMENT", f"filter not understood here: {request.get('filter')!r}")
        ids = {m["one"]} if m["one"] else {x.strip('"') for x in m["many"].split(" OR ")}
        chosen = [e for e in self.entries if e["jsonPayload"].get("correlation_id") in ids
                  and (not m["since"] or e["timestamp"] >= m["since"])
                  and (not m["until"] or e["timestamp"] <= m["until"])]
        chosen.sort(key=lambda e: e["timestamp"], reverse=request.get("orderBy") == "timestamp desc")
        start = int(request.get("pageToken") or 0)
        size = int(request.get("pageSize") or 50)
        page: dict[str, Any] = {"entries": chosen[start:start + size]}
        if start + size < len(chosen):
            page["nextPageToken"] = str(start + size)
        return 200, page


class GoogleStandIns:
    """The credentials, the OAuth endpoint and the API stand-ins a test needs, with the env that points at them."""

    def __init__(self, directory: Path, project: str) -> None:
        self.project = project
        self.credentials = Credentials()
        self.oauth = OAuthStandIn(self.credentials)
        self.key_file = self.credentials.key_file(directory, f"{self.oauth.url}/token")
        self.secret_manager = SecretManagerStandIn(self.credentials, project)
        self.logging = LoggingStandIn(self.credentials, project)

    def env(self) -> dict[str, str]:
        """What a process needs to reach these stand-ins through the clients' ordinary settings."""
        return {"GOOGLE_APPLICATION_CREDENTIALS": str(self.key_file), "GOOGLE_CLOUD_PROJECT": self.project,
                "SECRET_MANAGER_ENDPOINT": self.secret_manager.url, "CLOUD_LOGGING_ENDPOINT": self.logging.url}

    def close(self) -> None:
        self.logging.close()
        self.secret_manager.close()
        self.oauth.close()
