"""`ctower dev --cloud` (`make cloud-local`): the local stack in the production configuration.

Every function runs with the environment Terraform gives it (ops.cloudenv.function_env):
secret values and the tenants document from Secret Manager, the writers' database through
the Cloud SQL connector with IAM authentication, no DATABASE_URL and no TENANTS_FILE. The
Google APIs behind them are the local stand-ins (ops.standins): only the endpoints in
ops.cloudenv.STAND_IN_KEYS differ from a deploy. Pub/Sub is the emulator, Postgres the
embedded server, as in `make dev`, and `.local/stack.json` describes it for `ctower`.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from typing import Any

from ops.cloudenv import function_env
from ops.stack import DB_NAME, DEFAULT_EVENTS_API_KEY, Stack, port_open
from ops.stackinfo import ROOT, StackError, local_dir, port_for
from shared.db import Database
from shared.migrations import migrate

NAME_PREFIX = "ct-"  # Terraform's default name_prefix: secret ids are ct-<topology secret>
# Read by the cloud configuration only through the stand-ins; kept out of the functions' environment.
_LOCAL_ONLY = ("DATABASE_URL", "TENANTS_FILE", "OPENAI_API_KEY", "EVENTS_API_KEY", "SECRETS_BACKEND")


class CloudLocal:
    """The emulator, Postgres, the stand-ins and every function on the cloud's environment."""

    def __init__(self, out: Any = None) -> None:
        from ops.standins.cloud import LocalCloud

        self.stack = Stack(out=out or sys.stdout)
        self.cloud: LocalCloud | None = None
        self._pg: Any = None

    def start(self) -> None:
        try:
            self.stack.start_emulator()
            database_url = self._database()
            self._start_cloud(database_url)
            self._start_functions()
            self.stack.deliver()
            self._describe(database_url)
        except BaseException:
            self.stop()
            raise

    def _database(self) -> str:
        from ops.localdb import ensure_database, start_embedded

        url = os.environ.get("DATABASE_URL")
        if not url:
            self._pg = start_embedded(local_dir() / "pgdata")
            url = ensure_database(self._pg.get_uri(), DB_NAME)
        db = Database.for_url(url, size=1)
        try:
            migrate(db)
            from ops.standins.cloud import grant_iam_user
            from ops.tenants import seed_local_default

            seed_local_default(db)
            grant_iam_user(db)
        finally:
            db.close()
        return url

    def _start_cloud(self, database_url: str) -> None:
        from ops.standins.cloud import TENANTS_SECRET, LocalCloud
        from ops.tenants import publish, read_config

        directory = local_dir() / "cloud"
        directory.mkdir(parents=True, exist_ok=True)
        self.cloud = LocalCloud.start(directory, self.stack.project, database_url)
        functions = self.stack.topology.functions.values()
        values = {"events-api-key": os.environ.get("EVENTS_API_KEY", DEFAULT_EVENTS_API_KEY)}
        for name in {s for fn in functions for s in fn.mounted_secrets.values()} - set(values):
            values[name] = secrets.token_urlsafe(48)  # like Terraform: a random first version of a mounted secret
        for name in sorted({s for fn in functions for s in fn.secrets}):
            self.cloud.google.secret_manager.create(NAME_PREFIX + name, values.get(name))  # others: empty
        for key, value in self.cloud.stand_in_env().items():  # ctower in this process publishes through them
            os.environ[key] = value
        db = Database.for_url(database_url, size=1)
        try:
            with db.transaction() as cur:
                publish(read_config(cur), f"secret:{TENANTS_SECRET}")
        finally:
            db.close()
        self.stack._say("stack", f"cloud stand-ins up: Secret Manager {self.cloud.google.secret_manager.url}, "
                                 f"SQL Admin {self.cloud.admin.url}, Cloud SQL {self.cloud.front.ip}:3307, "
                                 f"Cloud Logging {self.cloud.google.logging.url}")

    def _start_functions(self) -> None:
        assert self.cloud is not None
        for key in _LOCAL_ONLY:  # the functions inherit this process's environment: nothing local may leak
            os.environ.pop(key, None)
        functions = self.stack.topology.functions.values()
        settings = {key: os.environ[key] for fn in functions for key in fn.env if os.environ.get(key)}
        names = {key: NAME_PREFIX + secret for fn in functions for key, secret in fn.secret_names.items()}
        mounted = {key: self.cloud.google.secret_manager.latest(NAME_PREFIX + secret)  # as Cloud Run mounts it
                   for fn in functions for key, secret in fn.mounted_secrets.items()}
        values = self.cloud.values(**{"ASSISTANT_ENABLED": "false", **settings, **names, **mounted})
        stand_ins = {**self.cloud.stand_in_env(), "PUBSUB_EMULATOR_HOST": self.stack.emulator_host or "",
                     "PYTHONUNBUFFERED": "1", "THREADS": os.environ.get("THREADS", "8")}
        for fn in self.stack.topology.functions.values():
            port = port_for(fn.name, fn.local_port)
            if port_open(port):
                raise StackError(f"port {port} for {fn.name} is taken; set CT_PORT_{fn.name.upper()}")
            env = {**function_env(fn.name, values, self.stack.topology), **stand_ins, "K_SERVICE": fn.name}
            self.stack.serve(fn.name, fn.entry_point, ROOT / "main.py", port, env)

    def _describe(self, database_url: str) -> None:
        assert self.cloud is not None
        description = {**self.stack.description(), "database_url": database_url,
                       "cloud": {"project": self.cloud.project, **self.cloud.stand_in_env(),
                                 "CLOUD_SQL_INSTANCE": self.cloud.instance.connection_name}}
        path = local_dir() / "stack.json"
        path.write_text(json.dumps(description, indent=2) + "\n", encoding="utf-8")
        lines = [f"  {name:<22} {url}" for name, url in self.stack.function_urls.items()]
        self.stack._say("stack", "up in cloud mode (Terraform's environment, Google APIs stood in). Functions:\n"
                        + "\n".join(lines) + f"\n  described in           {path}\nCtrl-C stops everything.")

    @property
    def processes(self) -> dict[str, Any]:
        return self.stack.processes

    def supervise(self) -> list[str]:
        """One round of the stack's supervision (ops.stack.run_forever): dead function servers are
        restarted with the same cloud environment, the pusher's retries written for `ctower status`."""
        return self.stack.supervise()

    def stop(self) -> None:
        self.stack.stop()
        if self.cloud is not None:
            self.cloud.close()
            self.cloud = None
        if self._pg is not None:
            self._pg.cleanup()
            self._pg = None


def run_forever() -> int:
    """`ctower dev --cloud`: what `ctower dev` does, with this stack."""
    from ops.stack import run_forever as run

    return run(CloudLocal())
