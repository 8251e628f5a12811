"""Settings read from the environment, once per instance.

Locally `make dev` sets these; in the cloud Terraform does (secrets arrive as
environment variables mounted from Secret Manager).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

DEFAULT_PROJECT = "control-tower-local"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from exc


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    project_id: str
    database_url: str | None
    cloud_sql_instance: str | None
    db_name: str
    db_user: str
    db_password: str | None
    db_iam_auth: bool
    db_private_ip: bool
    db_pool_size: int
    events_api_key: str | None
    max_body_bytes: int
    publish_timeout_seconds: float
    default_tenant: str
    log_level: str


def load_settings() -> Settings:
    """Read the environment now (tests call this after changing it)."""
    return Settings(
        project_id=os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCP_PROJECT") or DEFAULT_PROJECT,
        database_url=os.environ.get("DATABASE_URL") or None,
        cloud_sql_instance=os.environ.get("CLOUD_SQL_INSTANCE") or None,
        db_name=os.environ.get("DB_NAME", "control_tower"),
        db_user=os.environ.get("DB_USER", "postgres"),
        db_password=os.environ.get("DB_PASSWORD") or None,
        db_iam_auth=_bool("DB_IAM_AUTH", False),
        db_private_ip=_bool("DB_PRIVATE_IP", False),
        db_pool_size=_int("DB_POOL_SIZE", 2),
        events_api_key=os.environ.get("EVENTS_API_KEY") or None,
        max_body_bytes=_int("MAX_BODY_BYTES", 256 * 1024),
        publish_timeout_seconds=float(os.environ.get("PUBLISH_TIMEOUT_SECONDS", "10")),
        default_tenant=os.environ.get("DEFAULT_TENANT", "default"),
        log_level=os.environ.get("LOG_LEVEL", "INFO").upper(),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The instance's settings, read on first use."""
    return load_settings()
