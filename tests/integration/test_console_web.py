"""The console's HTTP handling in-process, on a real Postgres, with the publisher faked at its port.

What the browser tests cannot easily provoke: Pub/Sub refusing a publish (503, nothing
recorded), a bad field (400 naming it), a double-submitted form (one event), cookie and
header attributes, and every route's answer without a session.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.test import Client, TestResponse
from werkzeug.wrappers import Request

from shared.assistant.llm import OpenAIModel
from shared.console.users import add_user
from shared.console.web import Console
from shared.db import Database
from shared.instance import PerInstance
from tests.conftest import new_tenant, query
from tests.fakes import RecordingPublisher
from tests.standins import OpenAIStandIn

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("console_session_secret")]
PASSWORD = "senha-do-console-1"


@pytest.fixture
def tenant(database: Database) -> str:
    return new_tenant(database, "Web", "tw")


@pytest.fixture
def lead_id(database: Database, tenant: str) -> str:
    phone = f"5511{uuid.uuid4().int % 10**9:09d}"
    with database.transaction() as cur:
        cur.execute("INSERT INTO leads (tenant_id, phone, name, source, correlation_id, last_correlation_id) "
                    "VALUES (%s, %s, 'Lia', 'evolution', 'c', 'c') RETURNING id", (tenant, phone))
        lead = str(cur.fetchone()[0])
        cur.execute("INSERT INTO conversations (tenant_id, lead_id, provider, chat_id, correlation_id) "
                    "VALUES (%s, %s, 'evolution', %s, 'c') RETURNING id", (tenant, lead, phone + "@s.whatsapp.net"))
        conversation = str(cur.fetchone()[0])
        cur.execute("INSERT INTO messages (tenant_id, conversation_id, lead_id, provider, provider_message_id, "
                    "direction, sender_phone, message_type, body, sent_at, event_id, correlation_id) "
                    "VALUES (%s, %s, %s, 'evolution', %s, 'inbound', %s, 'text', 'oi', now(), 'in-event-1', 'c')",
                    (tenant, conversation, lead, uuid.uuid4().hex, phone))
    return lead


class Browserish:
    """A werkzeug test client that keeps cookies (Secure ones too) and reads the CSRF token from pages."""

    def __init__(self, console: Console) -> None:
        self.client = Client(lambda environ, start: console.handle(Request(environ))(environ, start))

    def get(self, path: str) -> TestResponse:
        return self.client.get(path)

    def post(self, path: str, data: dict[str, str]) -> TestResponse:
        return self.client.post(path, data=data)

    def csrf(self, path: str) -> str:
        match = re.search(r'name="csrf_token" value="([^"]+)"', self.get(path).get_data(as_text=True))
        assert match, path
        return match.group(1)

    def log_in(self, email: str) -> TestResponse:
        return self.post("/login", {"csrf_token": self.csrf("/login"), "email": email, "password": PASSWORD})


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def seller(database: Database, tenant: str, publisher: RecordingPublisher) -> Iterator[Browserish]:
    email = f"s{uuid.uuid4().hex[:8]}@example.com"
    with database.transaction() as cur:
        add_user(cur, email=email, name="Sofia", role="seller", tenant=tenant, password=PASSWORD)
    client = Browserish(Console(database, publisher))
    assert client.log_in(email).status_code == 303
    yield client


def test_cookies_and_headers(database: Database) -> None:
    client = Browserish(Console(database, RecordingPublisher()))
    page = client.get("/login")
    assert page.status_code == 200
    cookie = page.headers["Set-Cookie"]
    assert all(part in cookie for part in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/"))
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store" and page.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/assets/console.js").headers["Content-Type"].startswith("text/javascript")
    assert client.get("/assets/nope.js").status_code == 404


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/inbox", 303), ("GET", "/board", 303), ("GET", f"/leads/{uuid.uuid4()}", 303),
    ("GET", "/inbox?part=live", 401), ("POST", f"/leads/{uuid.uuid4()}/reply", 401), ("POST", "/logout", 401),
    ("GET", "/nada", 404), ("DELETE", "/inbox", 405),
])
def test_without_a_session_nothing_is_shown(database: Database, method: str, path: str, status: int) -> None:
    answer = Browserish(Console(database, RecordingPublisher())).client.open(path, method=method)
    assert answer.status_code == status
    if status == 303:
        assert answer.headers["Location"] == "/login"


def test_a_reply_is_one_event_however_often_the_form_is_sent(seller: Browserish, publisher: RecordingPublisher,
                                                              lead_id: str, database: Database) -> None:
    form = {"csrf_token": seller.csrf(f"/leads/{lead_id}"), "form_key": "k-1", "text": "Olá, Lia!"}
    first, second = seller.post(f"/leads/{lead_id}/reply", form), seller.post(f"/leads/{lead_id}/reply", form)
    assert first.status_code == second.status_code == 303
    kinds = [(e.event_type, e.payload.get("kind") or e.payload.get("to")) for e in publisher.published]
    assert kinds == [("handoff_requested", "human"), ("reply_requested", "human")] * 2  # taken over first
    assert publisher.published[1].event_id == publisher.published[3].event_id  # the same event twice
    reply = publisher.published[1]
    assert reply.source == "console" and reply.payload["in_reply_to"] == "in-event-1"
    assert reply.payload["text"] == "Olá, Lia!" and reply.payload["sent_by_user"]
    assert first.headers["Location"] == f"/leads/{lead_id}?ok=reply&cid={reply.correlation_id}"
    rows = query(database, "SELECT event_type FROM console_actions WHERE lead_id = %s ORDER BY event_type", lead_id)
    assert rows == [{"event_type": "handoff_requested"}, {"event_type": "reply_requested"}]


def test_a_publish_that_is_not_confirmed_is_a_503_and_nothing_is_recorded(
        seller: Browserish, publisher: RecordingPublisher, lead_id: str, database: Database) -> None:
    publisher.fail = True
    answer = seller.post(f"/leads/{lead_id}/stage", {"csrf_token": seller.csrf(f"/leads/{lead_id}"),
                                                     "to_stage": "qualificado"})
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert "Tente de novo" in answer.get_data(as_text=True)
    assert query(database, "SELECT count(*) AS n FROM console_actions WHERE lead_id = %s", lead_id) == [{"n": 0}]


@pytest.mark.parametrize(("action", "form", "field"), [
    ("stage", {"to_stage": "fechado"}, "to_stage"),
    ("note", {"body": ""}, "body"),
    ("reply", {"text": "x" * 4001}, "text"),
])
def test_a_bad_field_is_a_400_that_names_it(seller: Browserish, publisher: RecordingPublisher, lead_id: str,
                                            action: str, form: dict[str, Any], field: str) -> None:
    answer = seller.post(f"/leads/{lead_id}/{action}", {"csrf_token": seller.csrf(f"/leads/{lead_id}"), **form})
    assert answer.status_code == 400
    assert field in answer.get_data(as_text=True)
    assert not [e for e in publisher.published if e.event_type != "handoff_requested"]


def test_a_lead_without_a_conversation_cannot_be_answered(seller: Browserish, publisher: RecordingPublisher,
                                                          tenant: str, database: Database) -> None:
    with database.transaction() as cur:
        cur.execute("INSERT INTO leads (tenant_id, email, source, correlation_id, last_correlation_id) "
                    "VALUES (%s, 'form@example.com', 'form', 'c', 'c') RETURNING id", (tenant,))
        form_lead = str(cur.fetchone()[0])
    page = seller.get(f"/leads/{form_lead}").get_data(as_text=True)
    assert "Sem conversa no WhatsApp" in page and "reply-text" not in page
    answer = seller.post(f"/leads/{form_lead}/reply", {"csrf_token": seller.csrf("/inbox"), "text": "oi"})
    assert answer.status_code == 409 and not publisher.published


def _user(database: Database, tenant: str, role: str) -> tuple[str, str]:
    email = f"{role}{uuid.uuid4().hex[:8]}@example.com"
    with database.transaction() as cur:
        user = add_user(cur, email=email, name=role.title(), role=role, tenant=tenant, password=PASSWORD)
    return email, user.id


def test_an_admin_invites_by_one_time_link_changes_roles_and_disables(database: Database, tenant: str,
                                                                      lead_id: str) -> None:
    console = Console(database, RecordingPublisher())
    admin_email, admin_id = _user(database, tenant, "admin")
    admin = Browserish(console)
    assert admin.log_in(admin_email).status_code == 303
    page = admin.post("/team/invite", {"csrf_token": admin.csrf("/team"), "name": "Bruno", "role": "seller",
                                       "email": "Bruno.Novo@Example.com"})
    assert page.status_code == 200
    link = re.search(r'id="invite-link" readonly value="([^"]+)"', page.get_data(as_text=True))
    assert link and "/invite/" in link.group(1)
    path = link.group(1).split("localhost", 1)[1]
    assert query(database, "SELECT token_hash FROM console_invites WHERE email = 'bruno.novo@example.com'")[0][
        "token_hash"] not in path  # only a keyed hash is stored

    invited = Browserish(console)
    form = {"csrf_token": invited.csrf(path), "password": "a-senha-do-bruno", "password2": "outra-senha-x"}
    assert invited.post(path, form).status_code == 400  # the two passwords differ
    assert invited.post(path, {**form, "password2": "a-senha-do-bruno"}).status_code == 303
    assert Browserish(console).get(path).status_code == 404  # one time only
    bruno = Browserish(console)
    assert bruno.post("/login", {"csrf_token": bruno.csrf("/login"), "email": "bruno.novo@example.com",
                                 "password": "a-senha-do-bruno"}).status_code == 303
    bruno_id = query(database, "SELECT id FROM console_users WHERE email = 'bruno.novo@example.com'")[0]["id"]

    assert bruno.get("/team").status_code == 403  # a seller does not manage the team
    assert admin.post(f"/team/{bruno_id}/role", {"csrf_token": admin.csrf("/team"), "role": "viewer"}).status_code \
        == 303
    reply = bruno.post(f"/leads/{lead_id}/reply", {"csrf_token": bruno.csrf("/inbox"), "text": "oi"})
    assert reply.status_code == 403  # now a viewer
    assert admin.post(f"/team/{bruno_id}/disable", {"csrf_token": admin.csrf("/team")}).status_code == 303
    assert bruno.get("/inbox?part=live").status_code == 401  # his session ended with the account
    assert admin.post(f"/team/{admin_id}/disable", {"csrf_token": admin.csrf("/team")}).status_code == 400


def test_an_admin_cannot_touch_another_tenants_users(database: Database, tenant: str) -> None:
    other = new_tenant(database, "Outro", "tx")
    stranger_email, stranger_id = _user(database, other, "seller")
    admin_email, _ = _user(database, tenant, "admin")
    admin = Browserish(Console(database, RecordingPublisher()))
    admin.log_in(admin_email)
    token = admin.csrf("/team")
    assert admin.post(f"/team/{stranger_id}/disable", {"csrf_token": token}).status_code == 404
    assert admin.post(f"/team/{stranger_id}/role", {"csrf_token": token, "role": "admin"}).status_code == 404
    assert query(database, "SELECT role, active FROM console_users WHERE id = %s", stranger_id) == [
        {"role": "seller", "active": True}]
    assert stranger_email not in admin.get("/team").get_data(as_text=True)


def test_a_database_that_is_down_is_a_503_page_and_a_huge_form_a_413(database: Database) -> None:
    down = Database.for_url("postgresql://nobody@127.0.0.1:9/nothing", size=1)
    client = Browserish(Console(down, RecordingPublisher()))
    answer = client.get("/inbox")
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert "Tente de novo" in answer.get_data(as_text=True)
    big = Browserish(Console(database, RecordingPublisher())).post("/login", {"csrf_token": "x" * 70_000})
    assert big.status_code == 413


def test_a_plain_correlation_id_is_kept_and_anything_else_replaced(database: Database) -> None:
    client = Browserish(Console(database, RecordingPublisher()))
    assert client.client.get("/login", headers={"X-Correlation-ID": "abc-123"}).headers["X-Correlation-ID"] == "abc-123"
    odd = client.client.get("/login", headers={"X-Correlation-ID": "<script>" + "x" * 200}).headers["X-Correlation-ID"]
    assert uuid.UUID(odd)


def test_the_settings_simulator_shows_the_decided_turn(database: Database, tenant: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The console's simulator runs shared.assistant.simulator against the model (a stand-in here)."""
    facts = dict.fromkeys(("name", "project_type", "floor_type", "area_m2", "budget", "timing")) | {"city": "Campinas"}
    model = OpenAIStandIn(lambda messages: {"reply": "Atendemos sim!", "lead_facts": facts, "intent": "orcamento",
                                            "handoff": False})
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", f"{model.url}/v1")
    monkeypatch.setattr("shared.assistant.llm._model", PerInstance(OpenAIModel))  # made with the stand-in's URL
    admin_email, _ = _user(database, tenant, "admin")
    admin = Browserish(Console(database, RecordingPublisher()))
    admin.log_in(admin_email)
    try:
        page = admin.post("/settings/simulate", {"csrf_token": admin.csrf("/settings"),
                                                 "text": "Oi, vocês atendem em Campinas?"})
    finally:
        model.close()
    shown = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Atendemos sim!" in shown and "[intenção: orcamento]" in shown and "city = Campinas" in shown
    assert len(model.calls()) == 1
