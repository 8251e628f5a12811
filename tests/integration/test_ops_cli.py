"""`ctower db`, `ctower status`, `ctower audit` and the target choice, on real Postgres and the stack."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ops.cli import main
from ops.localdb import ensure_database
from shared.migrations import SQL_DIR
from tests.conftest import RunningStack

pytestmark = pytest.mark.integration

NO_TARGET = {"PUBSUB_EMULATOR_HOST": None, "GOOGLE_CLOUD_PROJECT": None, "DATABASE_URL": None,
             "CLOUD_SQL_INSTANCE": None}


def run(*args: str, **env: str | None) -> Result:
    return CliRunner().invoke(main, list(args), env={**NO_TARGET, **env}, catch_exceptions=False)


def test_db_migrate_applies_once_and_refuses_a_changed_migration(pg_server_url: str, tmp_path: Path) -> None:
    url = ensure_database(pg_server_url, f"ct_migrate_{uuid.uuid4().hex[:8]}")
    sql = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql)
    first = run("db", "migrate", "--sql-dir", str(sql), "--database-url", url, "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["applied"] == sorted(p.name for p in SQL_DIR.glob("*.sql"))
    again = run("db", "migrate", "--sql-dir", str(sql), "--database-url", url)
    assert again.exit_code == 0 and "schema is up to date" in again.stdout
    assert run("db", "status", "--sql-dir", str(sql), "--database-url", url).exit_code == 0

    audit_file = sql / "003_ops_audit.sql"
    audit_file.write_text(audit_file.read_text() + "\n-- edited after it was applied\n")
    refused = run("db", "migrate", "--sql-dir", str(sql), "--database-url", url)
    assert refused.exit_code == 3
    assert "003_ops_audit.sql was applied and has changed since" in refused.stderr
    status = run("db", "status", "--sql-dir", str(sql), "--database-url", url, "--json")
    assert status.exit_code == 1
    assert {"migration": "003_ops_audit.sql", "state": "changed"} in json.loads(status.stdout)

    (sql / "999_next.sql").write_text("CREATE TABLE ops_cli_test (id int);\n")
    audit_file.write_text((SQL_DIR / "003_ops_audit.sql").read_text())
    pending = run("db", "status", "--sql-dir", str(sql), "--database-url", url)
    assert pending.exit_code == 1 and "pending  999_next.sql" in pending.stdout


def test_status_reports_topics_subscriptions_failures_and_schema(stack: RunningStack) -> None:
    result = run("status", "--json", CT_LOCAL_DIR=stack.env["CT_LOCAL_DIR"])
    assert result.exit_code in (0, 1), result.output
    health = json.loads(result.stdout)
    assert result.exit_code == (1 if health["problems"] else 0)
    assert health["target"] == f"local:{stack.project}"
    assert {t["topic"] for t in health["topics"]} >= {"stage-changed", "lead-created"}
    assert all(t["state"] == "ok" for t in health["topics"])
    dead = {s["subscription"]: s for s in health["subscriptions"] if s["kind"] == "dead-letter"}
    assert isinstance(dead["stage-changed-dlq-ops"]["depth"], int)
    push = next(s for s in health["subscriptions"] if s["subscription"] == "stage-changed-pipeline-writer")
    assert push["state"] == "ok" and push["depth"] is None
    assert health["migrations"]["level"] == max(int(p.name[:3]) for p in SQL_DIR.glob("*.sql"))
    assert health["migrations"]["pending"] == []
    table = run("status", CT_LOCAL_DIR=stack.env["CT_LOCAL_DIR"])
    assert "SUBSCRIPTION" in table.stdout and "schema: migration level" in table.stdout


def test_audit_lists_runs_and_dlq_list_reads_the_stack(stack: RunningStack) -> None:
    listed = run("dlq", "list", "--type", "won", "--json", CT_LOCAL_DIR=stack.env["CT_LOCAL_DIR"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == [{"event_type": "won", "subscription": "won-dlq-ops", "depth": 0,
                                          "depth_at_least": False, "oldest_age_seconds": None}]
    dry = run("dlq", "redrive", "--type", "won", "--dry-run", "--operator", "audit-test",
              CT_LOCAL_DIR=stack.env["CT_LOCAL_DIR"])
    assert dry.exit_code == 0 and "would move 0" in dry.stdout
    unknown = run("dlq", "show", "--type", "nope", CT_LOCAL_DIR=stack.env["CT_LOCAL_DIR"])
    assert unknown.exit_code == 2 and "unknown event type 'nope'" in unknown.stderr
    runs = run("audit", "--limit", "1", "--json", CT_LOCAL_DIR=stack.env["CT_LOCAL_DIR"])
    [latest] = json.loads(runs.stdout)
    assert (latest["command"], latest["operator"], latest["dry_run"], latest["status"]) == \
        ("dlq redrive", "audit-test", True, "ok")
    assert latest["filter"]["event_types"] == ["won"]


def test_without_a_stack_or_cloud_settings_commands_exit_2(tmp_path: Path) -> None:
    result = run("dlq", "list", CT_LOCAL_DIR=str(tmp_path))
    assert result.exit_code == 2
    assert "no running local stack" in result.stderr and "--project" in result.stderr
