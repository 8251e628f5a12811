"""Limits per tenant and outbound pacing, against a real Postgres."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from shared import limits
from shared.db import Database
from shared.envelope import build_envelope
from shared.payloads import MessageReceived
from shared.writers import writer_for
from shared.writers.ledger import process
from tests.conftest import ROOT, new_tenant

pytestmark = pytest.mark.integration


@pytest.fixture
def tenant(database: Database) -> str:
    return new_tenant(database, "Limits", "lim")


def message_from(db: Database, tenant: str, phone: str) -> None:
    inbound = MessageReceived(provider="evolution", provider_message_id=uuid.uuid4().hex, phone=phone, chat_id=phone,
                              text="oi")
    process(db, build_envelope(event_type="message_received", payload=inbound, tenant=tenant, source="evolution",
                               correlation_id="c-lim", source_id=inbound.provider_message_id),
            "m-lim", writer_for("message_received"))


def test_defaults_until_an_operator_sets_the_tenants_limits(database: Database, tenant: str) -> None:
    assert limits.limits_for(database, tenant) == limits.Limits(500, 2000, None, None, 30)
    with database.transaction() as cur:
        cur.execute("INSERT INTO tenant_limits (tenant_id, messages_per_minute, assistant_calls_per_day) "
                    "VALUES (%s, 2, 10)", (tenant,))
    assert limits.limits_for(database, tenant) == limits.Limits(2, 2000, 10, None, 30)


def test_messages_per_minute_and_new_leads_per_day_are_counted_per_tenant(database: Database, tenant: str) -> None:
    for i in range(3):
        message_from(database, tenant, f"5511988{i:06d}")
    assert limits.exceeded(database, tenant, limits.Limits(messages_per_minute=3)) is None
    assert limits.exceeded(database, tenant, limits.Limits(messages_per_minute=2)) == "messages_per_minute 3/2"
    assert limits.exceeded(database, tenant, limits.Limits(new_leads_per_day=2)) == "new_leads_per_day 3/2"
    assert limits.exceeded(database, "default", limits.Limits(messages_per_minute=10_000)) is None


def test_sends_are_paced_per_number_and_a_long_queue_is_handed_back_to_pub_sub(database: Database) -> None:
    waits: list[float] = []
    sender, other = f"evolution:{uuid.uuid4().hex}", f"evolution:{uuid.uuid4().hex}"
    assert limits.pace(database, sender, 60, waits.append) == 0  # the first send goes at once
    second = limits.pace(database, sender, 60, waits.append)
    third = limits.pace(database, sender, 60, waits.append)
    assert 0.9 < second <= 1.0 and 1.9 < third <= 2.0 and waits == [second, third]
    assert limits.pace(database, other, 60, waits.append) == 0  # another number has its own queue
    slow = f"zapi:{uuid.uuid4().hex}"
    limits.pace(database, slow, 1, waits.append)
    with pytest.raises(limits.PacingBusy) as busy:
        limits.pace(database, slow, 1, waits.append)  # a minute's wait: longer than a push may hold
    assert busy.value.maybe_sent is False


def test_an_operator_reads_and_sets_a_tenants_limits_with_ctower(database: Database, database_url: str,
                                                                  tenant: str) -> None:
    def ctower(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ops.cli", "limits", *args, "--database-url", database_url,
                               "--json"], cwd=ROOT, capture_output=True, text=True, timeout=60)

    shown = ctower("show", "--tenant", tenant)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {"tenant": tenant, "messages_per_minute": 500, "new_leads_per_day": 2000,
                                        "assistant_calls_per_day": None, "assistant_tokens_per_day": None,
                                        "sends_per_minute_per_number": 30, "over": None}
    assert ctower("set", "--tenant", tenant, "--messages-per-minute", "1").returncode == 0
    changed = ctower("set", "--tenant", tenant, "--sends-per-minute-per-number", "12")
    assert json.loads(changed.stdout)["messages_per_minute"] == 1  # the earlier change is kept
    assert limits.limits_for(database, tenant) == limits.Limits(1, 2000, None, None, 12)
    for phone in ("5511977770001", "5511977770002"):
        message_from(database, tenant, phone)
    assert json.loads(ctower("show", "--tenant", tenant).stdout)["over"] == "messages_per_minute 2/1"
    assert ctower("set", "--tenant", tenant).returncode == 2  # nothing to set
    assert ctower("set", "--tenant", "nobody-here", "--new-leads-per-day", "5").returncode == 2
