"""A local "cloud": OAuth, Secret Manager, Cloud Logging and a Cloud SQL instance in front of a Postgres.

What a function configured exactly as Terraform configures it needs to run here: the
values of Terraform's environment (`values`, fed to ops.cloudenv.function_env) and the
few settings that point the Google clients at the stand-ins (`stand_in_env`), which the
cloud never sets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ops.standins.cloudsql import Instance, InstanceCA, SqlAdminStandIn, TlsFront
from ops.standins.google import SERVICE_ACCOUNT, GoogleStandIns

WRITER_DB_USER = SERVICE_ACCOUNT.removesuffix(".gserviceaccount.com")  # Terraform's local.writer_db_user
TENANTS_SECRET = "ct-tenants-config"  # noqa: S105 - a secret NAME (Terraform's tenants_config secret_id)
REGION = "southamerica-east1"


@dataclass
class LocalCloud:
    google: GoogleStandIns
    admin: SqlAdminStandIn
    instance: Instance
    front: TlsFront
    db_name: str

    @classmethod
    def start(cls, directory: Path, project: str, database_url: str, instance_name: str = "ct-main") -> LocalCloud:
        """Stand-ins on free loopback ports; the instance's front proxies to `database_url`'s server."""
        google = GoogleStandIns(directory, project)
        admin = SqlAdminStandIn(google.credentials)
        instance = Instance(project=project, region=REGION, name=instance_name, ca=InstanceCA(instance_name))
        front = TlsFront(instance, database_url)
        admin.add(instance)
        google.secret_manager.create(TENANTS_SECRET)  # Terraform creates it, empty
        return cls(google, admin, instance, front, urlparse(database_url).path.lstrip("/"))

    @property
    def project(self) -> str:
        return self.google.project

    def values(self, **overrides: str) -> dict[str, str]:
        """The values Terraform puts in the functions' environment (common_env, db_env), for this project."""
        return {"GOOGLE_CLOUD_PROJECT": self.project, "CT_ENV": "cloud", "LOG_LEVEL": "INFO",
                "SECRETS_BACKEND": "secretmanager", "TENANTS_SECRET": TENANTS_SECRET,
                "CLOUD_SQL_INSTANCE": self.instance.connection_name, "DB_NAME": self.db_name,
                "DB_USER": WRITER_DB_USER, "DB_IAM_AUTH": "true", "DB_POOL_SIZE": "2", **overrides}

    def stand_in_env(self) -> dict[str, str]:
        """Where the Google clients find the stand-ins (ops.cloudenv.STAND_IN_KEYS; never set in the cloud)."""
        return {**self.google.env(), "CLOUD_SQL_ADMIN_ENDPOINT": self.admin.url}

    def close(self) -> None:
        self.front.stop()
        self.admin.close()
        self.google.close()


def grant_iam_user(database: Any, user: str = WRITER_DB_USER) -> None:
    """The IAM database user and its rights (Terraform's db_bootstrap_command gives it cloudsqlsuperuser;
    here the grants on the tables the writers use)."""
    with database.transaction() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,))
        if cur.fetchone() is None:
            cur.execute(f'CREATE ROLE "{user}" LOGIN')
        cur.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{user}"')
        cur.execute(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{user}"')
