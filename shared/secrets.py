"""Secret values by name: the environment locally, Secret Manager in the cloud.

Configuration only ever names a secret (`ct-acme-meta-app-secret`); the value is read
here, cached per instance, and re-read on demand (at most once per MIN_REFRESH_SECONDS
per name) when a check against it fails, so a rotated secret is picked up without a
redeploy and a flood of bad requests cannot hammer Secret Manager.

Locally the value of `ct-acme-meta-app-secret` is the environment variable
`CT_ACME_META_APP_SECRET` (upper case, every non-alphanumeric character an underscore).

Secret Manager is reached over its REST API, in the cloud and in tests alike;
SECRET_MANAGER_ENDPOINT (unset in production) points the same client elsewhere, which
is how `make test` and `make cloud-local` run this path against a local stand-in.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from shared.instance import PerInstance
from shared.log import get_logger

log = get_logger(__name__)

MIN_REFRESH_SECONDS = 30.0
DEFAULT_TTL_SECONDS = 300.0
SECRET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{2,254}$")


class SecretUnavailable(RuntimeError):
    """A named secret has no value (not set, or the store cannot be reached); the edge answers 503."""


def env_name(name: str) -> str:
    """The environment variable that holds secret `name` locally."""
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _default_backend() -> str:
    configured = (os.environ.get("SECRETS_BACKEND") or "").strip().lower()
    if configured:
        return configured
    return "secretmanager" if os.environ.get("K_SERVICE") else "env"  # K_SERVICE: set on Cloud Run / gen2


class SecretStore:
    """Resolves secret names to values, with a per-instance cache."""

    def __init__(self, backend: str | None = None, project: str | None = None,
                 ttl_seconds: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.backend = backend or _default_backend()
        if self.backend not in ("env", "secretmanager"):
            raise ValueError(f"SECRETS_BACKEND must be env or secretmanager, got {self.backend!r}")
        self.project = project
        self.ttl_seconds = ttl_seconds if ttl_seconds is not None else float(
            os.environ.get("SECRETS_TTL_SECONDS") or DEFAULT_TTL_SECONDS)
        self._clock = clock
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._client: Any = None

    def get(self, name: str, refresh: bool = False) -> str:
        """The secret's value; `refresh` re-reads it unless it was read in the last MIN_REFRESH_SECONDS."""
        if not SECRET_NAME.match(name):
            raise SecretUnavailable(f"{name!r} is not a valid secret name")
        now = self._clock()
        cached = self._cache.get(name)
        if cached is not None:
            value, fetched_at = cached
            # A forced re-read is limited to one per MIN_REFRESH_SECONDS, but never keeps a value past its TTL.
            limit = min(MIN_REFRESH_SECONDS, self.ttl_seconds) if refresh else self.ttl_seconds
            fresh_enough = now - fetched_at < limit
            if fresh_enough:
                return value
        value = self._read(name)
        with self._lock:
            self._cache[name] = (value, now)
        return value

    def _read(self, name: str) -> str:
        if self.backend == "env":
            value = os.environ.get(env_name(name))
            if not value:
                raise SecretUnavailable(f"secret {name} is not set (environment variable {env_name(name)})")
            return value.rstrip("\r\n")
        return self._read_secret_manager(name).rstrip("\r\n")  # `echo x | gcloud secrets ...` adds a newline

    def _read_secret_manager(self, name: str) -> str:
        project = self.project or os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCP_PROJECT")
        try:
            if self._client is None:
                self._client = secret_manager_client()
            path = f"projects/{project}/secrets/{name}/versions/latest"
            response = self._client.access_secret_version(request={"name": path}, timeout=10)
            return str(response.payload.data.decode("utf-8"))
        except Exception as exc:
            # Never echo the value; the name and the error class are enough to act on.
            reason = _reason(exc)
            log.error("secret %s could not be read from Secret Manager (project %s): %s", name, project, reason,
                      extra={"secret": name, "error_code": reason.split(":", 1)[0]})
            raise SecretUnavailable(f"secret {name} could not be read from Secret Manager: {reason}") from exc


_HTTP_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def _reason(exc: Exception) -> str:
    """`PERMISSION_DENIED: <the API's message>`: the canonical status (the same over REST and gRPC) and the
    API's own words, which name resources, never values."""
    grpc_code = getattr(exc, "grpc_status_code", None)
    status = grpc_code.name if grpc_code is not None else _HTTP_STATUS.get(getattr(exc, "code", None) or 0)
    message = getattr(exc, "message", None) or str(exc)
    return f"{status or type(exc).__name__}: {str(message)[:300]}"


def secret_manager_client() -> Any:
    """A Secret Manager client over REST; SECRET_MANAGER_ENDPOINT (e.g. http://127.0.0.1:9090) points it elsewhere."""
    from google.cloud import secretmanager

    endpoint = os.environ.get("SECRET_MANAGER_ENDPOINT") or None
    return secretmanager.SecretManagerServiceClient(
        transport="rest", client_options={"api_endpoint": endpoint} if endpoint else None)


_store: PerInstance[SecretStore] = PerInstance(SecretStore)


def get_store() -> SecretStore:
    """The instance's secret store, made on first use."""
    return _store.get()


def reset_store(store: SecretStore | None = None) -> None:
    """Replace the instance's store (tests, or after changing SECRETS_BACKEND)."""
    _store.reset(store)
