"""`ctower tenants`: edits the tables, refuses what cannot work, publishes; the running edge follows, no deploy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ops.cli import main
from shared.db import Database
from shared.tenants import parse_config
from tests.conftest import RunningStack, query
from tests.fixtures import raw
from tests.fixtures.tenants import secret
from tests.http import post

pytestmark = pytest.mark.integration


def ctower(database_url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["tenants", *args, "--database-url", database_url], catch_exceptions=False)
    return result.exit_code, result.output


def test_edit_validate_publish_list(database_url: str, database: Database, tmp_path: Path) -> None:
    target = str(tmp_path / "tenants.json")
    code, out = ctower(database_url, "add", "umbrella", "--name", "Umbrella Pisos", "--to", target)
    assert code == 0 and "published to" in out
    code, out = ctower(database_url, "set-source", "umbrella", "leads/typeform", "--to", target)
    assert code == 2 and "needs --secret" in out  # refused whole: nothing changed
    assert query(database, "SELECT count(*) AS n FROM tenant_sources WHERE tenant_id = 'umbrella'") == [{"n": 0}]
    code, out = ctower(database_url, "set-source", "umbrella", "leads/typeform", "--secret", "ct-umbrella-typeform",
                       "--map", "01HF3QZ8W2Y5=nickname", "--to", target)
    assert code == 2 and "field_map" in out  # not a lead field
    code, _ = ctower(database_url, "set-source", "umbrella", "leads/typeform", "--secret", "ct-umbrella-typeform",
                     "--id", "abc123", "--map", "01HF3QZ8W2Y5=name", "--to", target)
    assert code == 0
    document = parse_config(Path(target).read_text())
    typeform = document.tenants["umbrella"].leads["typeform"]
    assert (typeform.secret, typeform.ids) == ("ct-umbrella-typeform", ("abc123",))
    assert typeform.field_map == {"01HF3QZ8W2Y5": "name"}  # a form whose refs are generated ids
    code, out = ctower(database_url, "list", "--json")
    assert code == 0 and json.loads(out)["tenants"]["umbrella"]["name"] == "Umbrella Pisos"
    code, _ = ctower(database_url, "remove", "umbrella", "--to", target)
    assert code == 0 and "umbrella" not in parse_config(Path(target).read_text()).tenants
    assert query(database, "SELECT active FROM tenants WHERE id = 'umbrella'") == [{"active": False}]


def test_a_new_tenant_works_on_the_running_stack_without_a_restart(stack: RunningStack, database_url: str,
                                                                    clean_db: Database) -> None:
    published = str(Path(stack.env["CT_LOCAL_DIR"]) / "tenants.json")
    url = stack.url("leads") + "/initech/form"
    token = {"X-Webhook-Token": secret("acme", "form-token")}  # a secret name the stack's environment has
    lead = {"phone": "11955554444", "name": "Initech"}
    assert post(url, lead, headers=token).status == 404
    assert ctower(database_url, "add", "initech", "--name", "Initech", "--to", published)[0] == 0
    assert ctower(database_url, "set-source", "initech", "leads/form", "--secret", "ct-acme-form-token",
                  "--to", published)[0] == 0
    assert post(url, lead, headers={"X-Webhook-Token": "wrong"}).status == 401
    assert post(url, lead, headers=token).status == 202
    assert ctower(database_url, "remove", "initech", "--to", published)[0] == 0
    assert post(url, lead, headers=token).status == 404
    assert post(stack.url("whatsapp") + "/initech/zapi", raw=raw("zapi", "text"), headers=token).status == 404
