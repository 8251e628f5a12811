"""Where an ops command points — the local stack (default) or the cloud — and its clients.

Every `ctower` command builds one `OpsContext`. Clients are made on first use, so
`--help` and a refused command never open a connection.

Local: `.local/stack.json` (what `make dev` writes) gives the project, the emulator and
the database; PUBSUB_EMULATOR_HOST / GOOGLE_CLOUD_PROJECT / DATABASE_URL, when set
together with the emulator, override it. Cloud: a project (`--project` or
GOOGLE_CLOUD_PROJECT) plus DATABASE_URL or CLOUD_SQL_INSTANCE, and no emulator.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ops.stackinfo import StackError, read_description
from shared.config import Settings, load_settings
from shared.db import Database
from shared.publisher import PubSubPublisher
from shared.topology import Topology, load_topology

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import SubscriberClient


class ConfigError(RuntimeError):
    """Neither a running local stack nor a cloud configuration; the message says what to set."""


@dataclass(frozen=True)
class Target:
    mode: str  # "local" or "cloud"
    project: str
    emulator_host: str | None
    settings: Settings

    @property
    def cloud(self) -> bool:
        return self.mode == "cloud"

    @property
    def label(self) -> str:
        return f"{self.mode}:{self.project}"


def resolve_target(project: str | None = None, database_url: str | None = None, *, need_pubsub: bool = True,
                   environ: Mapping[str, str] | None = None) -> Target:
    """Pick local or cloud from flags and environment (see the module docstring).

    A GOOGLE_CLOUD_PROJECT in the shell alone does not mean the cloud (gcloud users often
    have one set); `--project`, or the variable together with a database, does.
    """
    env = os.environ if environ is None else environ
    emulator = env.get("PUBSUB_EMULATOR_HOST") or None
    env_project = env.get("GOOGLE_CLOUD_PROJECT") or None
    database_url = database_url or env.get("DATABASE_URL") or None
    has_db = bool(database_url or env.get("CLOUD_SQL_INSTANCE"))
    settings = replace(load_settings(), database_url=database_url)
    if not emulator and (project or (env_project and has_db)):
        chosen = str(project or env_project)
        return Target("cloud", chosen, None, replace(settings, project_id=chosen))
    if emulator and (project or env_project) and (has_db or not need_pubsub):
        chosen = str(project or env_project)
        return Target("local", chosen, emulator, replace(settings, project_id=chosen))
    if not need_pubsub and has_db:
        return Target("local", settings.project_id, emulator, settings)
    try:
        description = read_description()
    except StackError as exc:
        raise ConfigError(f"{exc}; or point at the cloud with --project (or GOOGLE_CLOUD_PROJECT) and "
                          "CLOUD_SQL_INSTANCE or DATABASE_URL") from exc
    chosen = str(project or env_project) if emulator and (project or env_project) else str(description["project"])
    if not has_db:
        settings = replace(settings, database_url=description["database_url"])
    return Target("local", chosen, emulator or description["pubsub_emulator_host"],
                  replace(settings, project_id=chosen))


@dataclass
class OpsContext:
    """One command's target and its lazily made clients; `close()` releases them."""

    target: Target
    topology: Topology = field(default_factory=load_topology)
    _database: Database | None = None
    _publisher: PubSubPublisher | None = None
    _subscriber: SubscriberClient | None = None

    @property
    def project(self) -> str:
        return self.target.project

    @property
    def database(self) -> Database:
        if self._database is None:
            self._database = Database(self.target.settings, size=2)
        return self._database

    @property
    def publisher(self) -> PubSubPublisher:
        if self._publisher is None:
            self._use_emulator()
            self._publisher = PubSubPublisher(self.project, self.target.settings.publish_timeout_seconds,
                                              self.topology)
        return self._publisher

    @property
    def subscriber(self) -> SubscriberClient:
        if self._subscriber is None:
            self._use_emulator()
            from google.cloud import pubsub_v1

            self._subscriber = pubsub_v1.SubscriberClient()
        return self._subscriber

    def _use_emulator(self) -> None:
        """The Google clients find the emulator only through this variable."""
        if self.target.emulator_host:
            os.environ["PUBSUB_EMULATOR_HOST"] = self.target.emulator_host

    def close(self) -> None:
        if self._subscriber is not None:
            self._subscriber.close()
        if self._database is not None:
            self._database.close()


def build_context(project: str | None = None, database_url: str | None = None, *,
                  need_pubsub: bool = True) -> OpsContext:
    return OpsContext(resolve_target(project, database_url, need_pubsub=need_pubsub))


def operator_name(explicit: str | None, target: Target, environ: Mapping[str, str] | None = None) -> str:
    """Who runs the command, for the audit trail: --operator, CT_OPERATOR, gcloud account, OS user."""
    env = os.environ if environ is None else environ
    if explicit or env.get("CT_OPERATOR"):
        return str(explicit or env.get("CT_OPERATOR"))
    if target.cloud and shutil.which("gcloud"):
        account = _gcloud_account()
        if account:
            return account
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "unknown"


def _gcloud_account() -> str | None:
    try:
        out: Any = subprocess.run(["gcloud", "config", "get-value", "account"], capture_output=True, text=True,
                                  timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    account = str(out.stdout).strip()
    return account if out.returncode == 0 and account and account != "(unset)" else None
