"""A webhook reaches a row with the functions started on Terraform's environment, against the stand-ins.

The edge (`leads`) and its writer (`leads_writer`) get exactly ops.cloudenv.function_env (the
keys of terraform/functions.tf's locals) plus only the stand-in endpoints of STAND_IN_KEYS:
secrets and the tenants document from Secret Manager, the database through the Cloud SQL
connector with IAM auth, Pub/Sub from the emulator with the topology's subscriptions,
pushed as the local stack pushes them (ops/pusher.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ops.cli import main
from ops.cloudenv import STAND_IN_KEYS, function_env
from ops.provision import provision
from ops.pusher import Pusher
from ops.standins.cloud import TENANTS_SECRET, WRITER_DB_USER, LocalCloud, grant_iam_user
from shared.db import Database
from shared.topology import load_topology
from tests.cloud_function import ServedFunction, serve_function
from tests.conftest import RunningStack, query, wait_for
from tests.http import post

pytestmark = pytest.mark.integration


@pytest.fixture
def cloud(stack: RunningStack, tmp_path: Path, database_url: str, database: Database) -> Iterator[LocalCloud]:
    # Its own project on the session's emulator, so the local stack's writers never see these messages.
    local_cloud = LocalCloud.start(tmp_path, f"ct-cloud-{uuid.uuid4().hex[:6]}", database_url)
    grant_iam_user(database)
    yield local_cloud
    local_cloud.close()


def test_a_webhook_goes_through_to_a_row_on_terraforms_environment(cloud: LocalCloud, stack: RunningStack,
                                                                   database_url: str, clean_db: Database,
                                                                   tmp_path: Path) -> None:
    cloud.google.secret_manager.create("ct-cloudenv-form-token", "cloudenv-token")
    runner = CliRunner()
    for args in (["add", "cloudenv", "--name", "Cloud Env", "--no-publish"],
                 ["set-source", "cloudenv", "leads/form", "--secret", "ct-cloudenv-form-token", "--no-publish"],
                 ["publish", "--to", f"secret:{TENANTS_SECRET}"]):
        result = runner.invoke(main, ["tenants", *args, "--database-url", database_url],
                               env={**cloud.stand_in_env(), "SECRETS_BACKEND": "secretmanager"},
                               catch_exceptions=False)
        assert result.exit_code == 0, result.output

    emulator = {"PUBSUB_EMULATOR_HOST": stack.description["pubsub_emulator_host"]}
    stand_ins = {**cloud.stand_in_env(), **emulator}
    assert set(stand_ins) <= set(STAND_IN_KEYS) | {"GOOGLE_CLOUD_PROJECT"}
    values = cloud.values()
    served: list[ServedFunction] = []
    pusher: Pusher | None = None
    try:
        for name in ("leads", "leads_writer"):
            env = function_env(name, values)
            assert "DATABASE_URL" not in env and "TENANTS_FILE" not in env
            served.append(serve_function(name, {**env, **stand_ins}, tmp_path))
        urls = {fn: "http://127.0.0.1:9" for fn in load_topology().functions}  # nothing else runs here
        urls.update({fn.name: fn.url for fn in served})
        pusher = Pusher(cloud.project, provision(cloud.project, load_topology(), urls), threads=2)
        pusher.start()  # as the local stack delivers

        answer = post(served[0].url + "/cloudenv/form", {"phone": "11960003333", "name": "Terraform Env"},
                      headers={"X-Webhook-Token": "cloudenv-token"})
        assert answer.status == 202, answer.text
        cid = answer.json()["correlation_id"]
        rows = wait_for(lambda: query(clean_db, "SELECT l.phone, l.tenant_id, e.status FROM leads l JOIN events e "
                                                "ON e.correlation_id = l.correlation_id WHERE l.correlation_id = %s",
                                      cid), timeout=60)
        assert rows == [{"phone": "5511960003333", "tenant_id": "cloudenv", "status": "processed"}]
        # The writer wrote through the connector, as the IAM user, with a certificate from the Admin API.
        assert cloud.front.accepted >= 1 and [i.iam_user for i in cloud.instance.issued] == [WRITER_DB_USER]
    except BaseException:
        for fn in served:
            print(f"--- {fn.name}\n{fn.log()[-3000:]}")
        raise
    finally:
        if pusher is not None:
            pusher.stop()
        for fn in served:
            fn.stop()
        runner.invoke(main, ["tenants", "remove", "cloudenv", "--database-url", database_url, "--no-publish"])
