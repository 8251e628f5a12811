"""`make cloud-local` (`ctower dev --cloud`): the stack on Terraform's environment, Google APIs stood in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.standins.cloud import WRITER_DB_USER
from shared.db import Database
from tests.conftest import RunningStack, query, start_stack, stop_stack, wait_for
from tests.http import post

pytestmark = pytest.mark.e2e


@pytest.fixture
def cloud_stack(tmp_path: Path, database_url: str) -> Iterator[RunningStack]:
    running = start_stack(tmp_path, database_url, dev_args=("--cloud",))
    yield running
    stop_stack(running)


def test_a_webhook_reaches_a_row_in_cloud_mode(cloud_stack: RunningStack, clean_db: Database) -> None:
    described = json.loads((Path(cloud_stack.env["CT_LOCAL_DIR"]) / "stack.json").read_text())
    assert described["cloud"]["CLOUD_SQL_INSTANCE"].endswith(":southamerica-east1:ct-main")
    answer = post(cloud_stack.url("leads") + "/webhook/lead", {"phone": "11960004444", "name": "Modo Nuvem"})
    assert answer.status == 202, cloud_stack.log()[-3000:]
    cid = answer.json()["correlation_id"]
    wait_for(lambda: query(clean_db, "SELECT 1 FROM leads WHERE correlation_id = %s", cid), timeout=60)
    # The writer holds its pooled connection: logged in through the connector as the IAM user, not DATABASE_URL's.
    users = query(clean_db, "SELECT DISTINCT usename FROM pg_stat_activity WHERE usename = %s", WRITER_DB_USER)
    assert users == [{"usename": WRITER_DB_USER}]
    events = post(cloud_stack.url("events") + "/events", {"event_type": "stage_changed", "phone": "11960004444",
                                                          "payload": {"to_stage": "triagem"}},
                  headers={"Authorization": "Bearer dev-events-key"})  # the key read from "Secret Manager"
    assert events.status == 202, events.text
