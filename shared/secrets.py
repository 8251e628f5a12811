"""Secret values by name: the environment locally, Secret Manager in the cloud.

Configuration only ever names a secret (`ct-acme-meta-app-secret`); the value is read
here, cached per instance, and re-read on demand (at most once per MIN_REFRESH_SECONDS
per name) when a check against it fails, so a rotated secret is picked up without a
redeploy and a flood of bad requests cannot hammer Secret Manager.

Locally the value of `ct-acme-meta-app-secret` is the environment variable
`CT_ACME_META_APP_SECRET` (upper case, every non-alphanumeric character an underscore).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from shared.instance import PerInstance

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
            fresh_enough = now - fetched_at < (MIN_REFRESH_SECONDS if refresh else self.ttl_seconds)
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
        try:
            if self._client is None:
                from google.cloud import secretmanager

                self._client = secretmanager.SecretManagerServiceClient()
            project = self.project or os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCP_PROJECT")
            path = f"projects/{project}/secrets/{name}/versions/latest"
            response = self._client.access_secret_version(request={"name": path}, timeout=10)
            return str(response.payload.data.decode("utf-8"))
        except Exception as exc:
            # Never echo the value; the name and the error class are enough to act on.
            raise SecretUnavailable(f"secret {name} could not be read from Secret Manager: "
                                    f"{type(exc).__name__}") from exc


_store: PerInstance[SecretStore] = PerInstance(SecretStore)


def get_store() -> SecretStore:
    """The instance's secret store, made on first use."""
    return _store.get()


def reset_store(store: SecretStore | None = None) -> None:
    """Replace the instance's store (tests, or after changing SECRETS_BACKEND)."""
    _store.reset(store)
