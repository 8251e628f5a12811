"""The events API per tenant, on the local stack: a tenant's key moves only that tenant's leads."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.db import Database
from tests.conftest import RunningStack, query, wait_for
from tests.fixtures.tenants import install, secret
from tests.http import post
from tests.seeds import EVENTS_AUTH

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tenants(stack: RunningStack, database: Database) -> RunningStack:
    install(database, Path(stack.env["CT_LOCAL_DIR"]) / "tenants.json")
    return stack


def bearer(tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret(tenant, 'events-api-key')}"}


def acme_lead(stack: RunningStack, db: Database, phone: str) -> str:
    response = post(stack.url("leads") + "/acme/form", {"phone": phone, "name": "Cliente Acme"},
                    headers={"X-Webhook-Token": secret("acme", "form-token")})
    assert response.status == 202, response.text
    rows = wait_for(lambda: query(db, "SELECT id FROM leads WHERE tenant_id = 'acme' AND phone = %s",
                                  "55" + phone), timeout=60)
    return str(rows[0]["id"])


def stage(db: Database, lead_id: str) -> str:
    return str(query(db, "SELECT stage FROM leads WHERE id = %s", lead_id)[0]["stage"])


def test_a_tenants_key_moves_its_own_lead_and_no_other_tenants(tenants: RunningStack, clean_db: Database) -> None:
    lead_id = acme_lead(tenants, clean_db, "11944443333")
    change = {"event_type": "stage_changed", "lead_id": lead_id,
              "payload": {"from_stage": "novo", "to_stage": "qualificado", "reason": "respondeu"}}
    url = tenants.url("events") + "/acme/events"
    for refused in (bearer("globex"), EVENTS_AUTH, {}):  # another tenant's key, the default's, none
        assert post(url, change, headers=refused).status == 401
    assert post(tenants.url("events") + "/globex/events", change, headers=bearer("acme")).status == 401
    response = post(url, change, headers=bearer("acme"))
    assert response.status == 202, response.text
    wait_for(lambda: stage(clean_db, lead_id) == "qualificado", timeout=60)
    assert query(clean_db, "SELECT tenant_id, to_stage, applied FROM pipeline_moves") == [
        {"tenant_id": "acme", "to_stage": "qualificado", "applied": True}]

    # By phone: the lead of the tenant in the URL, never a new lead elsewhere.
    by_phone = {"event_type": "stage_changed", "phone": "11944443333", "payload": {"to_stage": "proposta"}}
    assert post(url, by_phone, headers=bearer("acme")).status == 202
    wait_for(lambda: stage(clean_db, lead_id) == "proposta", timeout=60)
    assert query(clean_db, "SELECT tenant_id, count(*) AS n FROM leads GROUP BY tenant_id") == [
        {"tenant_id": "acme", "n": 1}]
    events = query(clean_db, "SELECT tenant_id, status FROM events WHERE event_type = 'stage_changed'")
    assert events == [{"tenant_id": "acme", "status": "processed"}] * 2


def test_the_tenant_less_url_is_the_default_tenants_only(tenants: RunningStack, clean_db: Database) -> None:
    change = {"event_type": "stage_changed", "phone": "11933332222", "payload": {"to_stage": "triagem"}}
    assert post(tenants.url("events") + "/events", change, headers=bearer("acme")).status == 401
    assert post(tenants.url("events") + "/default/events", change, headers=bearer("acme")).status == 401
    response = post(tenants.url("events") + "/events", change, headers=EVENTS_AUTH)
    assert response.status == 202, response.text
    wait_for(lambda: query(clean_db, "SELECT tenant_id FROM leads WHERE phone = '5511933332222'"), timeout=60)
    assert query(clean_db, "SELECT tenant_id FROM leads") == [{"tenant_id": "default"}]
