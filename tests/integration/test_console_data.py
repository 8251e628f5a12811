"""The console's data layer against a real Postgres: users, throttling, sessions, tenant isolation."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from shared.console import queries, sessions
from shared.console.users import LOCK_AFTER, UserError, add_user, authenticate, disable_user, reset_password
from shared.db import Database
from tests.conftest import ROOT, new_tenant, query

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("console_session_secret")]
PASSWORD = "senha-muito-boa-1"


@pytest.fixture
def tenants(database: Database) -> tuple[str, str]:
    return new_tenant(database, "A", "ta"), new_tenant(database, "B", "tb")


def _email() -> str:
    return f"u{uuid.uuid4().hex[:10]}@example.com"


def _lead(database: Database, tenant: str, phone: str) -> str:
    with database.transaction() as cur:
        cur.execute("INSERT INTO leads (tenant_id, phone, name, source, correlation_id, last_correlation_id) "
                    "VALUES (%s, %s, 'Lead', 'test', 'c', 'c') RETURNING id", (tenant, phone))
        lead_id = str(cur.fetchone()[0])
        cur.execute("INSERT INTO conversations (tenant_id, lead_id, provider, chat_id, correlation_id) "
                    "VALUES (%s, %s, 'evolution', %s, 'c') RETURNING id", (tenant, lead_id, phone))
        conversation = str(cur.fetchone()[0])
        cur.execute("INSERT INTO messages (tenant_id, conversation_id, lead_id, provider, provider_message_id, "
                    "direction, sender_phone, message_type, body, sent_at, event_id, correlation_id) "
                    "VALUES (%s, %s, %s, 'evolution', %s, 'inbound', %s, 'text', 'oi', now(), %s, 'cid-in')",
                    (tenant, conversation, lead_id, uuid.uuid4().hex, phone, uuid.uuid4().hex))
    return lead_id


def test_passwords_are_argon2id_and_only_the_right_one_signs_in(database: Database, tenants: tuple[str, str]) -> None:
    email = _email()
    with database.transaction() as cur:
        user = add_user(cur, email=email.upper(), name="Ana", role="seller", tenant=tenants[0], password=PASSWORD)
    assert user.email == email and user.tenant_id == tenants[0]
    stored = query(database, "SELECT password_hash FROM console_users WHERE id = %s", user.id)[0]["password_hash"]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    with database.transaction() as cur:
        assert authenticate(cur, email, "errada-errada").user is None
        assert authenticate(cur, email, PASSWORD).user == user


def test_roles_need_the_right_tenant_and_emails_are_unique(database: Database, tenants: tuple[str, str]) -> None:
    email = _email()
    with database.transaction() as cur:
        add_user(cur, email=email, name="Ana", role="admin", tenant=tenants[0], password=PASSWORD)
    for kwargs, message in (({"role": "seller", "tenant": None}, "needs --tenant"),
                            ({"role": "operator", "tenant": tenants[0]}, "operator has no tenant"),
                            ({"role": "chefe", "tenant": tenants[0]}, "role must be"),
                            ({"role": "seller", "tenant": "nao-existe"}, "no tenant"),
                            ({"role": "seller", "tenant": tenants[0], "email": email}, "already exists"),
                            ({"role": "seller", "tenant": tenants[0], "password": "curta"}, "at least")):
        args = {"email": _email(), "name": "X", "password": PASSWORD, **kwargs}
        with pytest.raises(UserError, match=message), database.transaction() as cur:
            add_user(cur, **args)  # type: ignore[arg-type]


def test_ten_wrong_passwords_lock_the_login_even_for_the_right_one_until_reset(
        database: Database, tenants: tuple[str, str]) -> None:
    email = _email()
    with database.transaction() as cur:
        add_user(cur, email=email, name="Ana", role="seller", tenant=tenants[0], password=PASSWORD)
    results = []
    for _ in range(LOCK_AFTER):
        with database.transaction() as cur:
            results.append(authenticate(cur, email, "errada-errada"))
    assert [r.locked for r in results] == [False] * (LOCK_AFTER - 1) + [True]
    with database.transaction() as cur:
        assert authenticate(cur, email, PASSWORD).locked
    # An unknown e-mail is throttled the same way (the lock says nothing about who exists).
    ghost = _email()
    for _ in range(LOCK_AFTER):
        with database.transaction() as cur:
            last = authenticate(cur, ghost, "errada-errada")
    assert last.locked
    with database.transaction() as cur:
        reset_password(cur, email, PASSWORD + "2")
    with database.transaction() as cur:
        assert authenticate(cur, email, PASSWORD + "2").user is not None


def test_sessions_are_revoked_by_logout_disable_and_reset(database: Database, tenants: tuple[str, str]) -> None:
    email = _email()
    with database.transaction() as cur:
        user = add_user(cur, email=email, name="Ana", role="seller", tenant=tenants[0], password=PASSWORD)
        token, session = sessions.create(cur, user)
        assert sessions.lookup(cur, token) == session
        assert session.tenant == tenants[0] and session.csrf_ok(session.csrf_token) and not session.csrf_ok("x")
        stored = query(database, "SELECT token_hash FROM console_sessions WHERE user_id = %s", user.id)
        sessions.revoke(cur, session)
        assert sessions.lookup(cur, token) is None
        token2, _ = sessions.create(cur, user)
        disable_user(cur, email)
        assert sessions.lookup(cur, token2) is None
        assert authenticate(cur, email, PASSWORD).user is None  # disabled: the right password does not help
        reset_password(cur, email, PASSWORD)
        token3, _ = sessions.create(cur, user)
        reset_password(cur, email, PASSWORD + "x")
        assert sessions.lookup(cur, token3) is None
    assert all(token not in r["token_hash"] for r in stored)  # only a keyed hash is stored


def test_operators_choose_a_tenant_other_roles_cannot(database: Database, tenants: tuple[str, str]) -> None:
    with database.transaction() as cur:
        operator = add_user(cur, email=_email(), name="Op", role="operator", tenant=None, password=PASSWORD)
        seller = add_user(cur, email=_email(), name="Ana", role="seller", tenant=tenants[0], password=PASSWORD)
        op_token, op_session = sessions.create(cur, operator)
        assert op_session.tenant is None
        assert sessions.choose_tenant(cur, op_session, tenants[1])
        assert sessions.lookup(cur, op_token).tenant == tenants[1]  # type: ignore[union-attr]
        assert not sessions.choose_tenant(cur, op_session, "nao-existe")
        s_token, s_session = sessions.create(cur, seller)
        assert not sessions.choose_tenant(cur, s_session, tenants[1])
        assert sessions.lookup(cur, s_token).tenant == tenants[0]  # type: ignore[union-attr]


def test_every_read_sees_only_its_own_tenant(database: Database, tenants: tuple[str, str]) -> None:
    a, b = tenants
    lead_a = _lead(database, a, f"5511{uuid.uuid4().int % 10**9:09d}")
    lead_b = _lead(database, b, f"5511{uuid.uuid4().int % 10**9:09d}")
    with database.transaction() as cur:
        assert queries.lead(cur, a, lead_a) is not None
        assert queries.lead(cur, a, lead_b) is None
        assert queries.lead(cur, b, lead_a) is None
        assert queries.lead(cur, a, "not-a-uuid") is None
        assert queries.timeline(cur, a, lead_b) == []
        assert [i.correlation_id for i in queries.timeline(cur, a, lead_a)] == ["cid-in"]
        assert {str(r["lead_id"]) for r in queries.inbox(cur, a)} == {lead_a}
        assert {str(r["lead_id"]) for r in queries.inbox(cur, b)} == {lead_b}
        board_a = {c["stage"]: [str(x["id"]) for x in c["leads"]] for c in queries.board(cur, a)}
        assert board_a["novo"] == [lead_a]
        inbox_a = queries.inbox(cur, a)[0]
        assert inbox_a["waiting_since"] is not None and inbox_a["handled_by"] == "assistant"


def test_ctower_users_add_list_disable_reset(database_url: str, database: Database, tenants: tuple[str, str]) -> None:
    email = _email()
    env = {**os.environ, "DATABASE_URL": database_url}

    def ctower(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ops.cli", "users", *args], cwd=ROOT, env=env, input=stdin,
                              capture_output=True, text=True, timeout=60)

    added = ctower("add", email, "--name", "Primeira Admin", "--role", "admin", "--tenant", tenants[0])
    assert added.returncode == 0, added.stderr
    password = added.stdout.split("password (shown once): ")[1].strip()
    with database.transaction() as cur:
        assert authenticate(cur, email, password).user is not None
    assert ctower("add", email, "--name", "De novo", "--role", "admin", "--tenant", tenants[0]).returncode == 3
    listed = ctower("list", "--tenant", tenants[0])
    assert email in listed.stdout and "admin" in listed.stdout
    assert ctower("disable", email).returncode == 0
    with database.transaction() as cur:
        assert authenticate(cur, email, password).user is None
    reset = ctower("reset", email, "--password-stdin", "--json", stdin="uma-senha-nova-123\n")
    assert reset.returncode == 0, reset.stderr
    assert "uma-senha-nova-123" not in reset.stdout  # a password given on stdin is not echoed
    with database.transaction() as cur:
        assert authenticate(cur, email, "uma-senha-nova-123").user is not None
    assert ctower("disable", "ninguem@example.com").returncode == 2


def test_the_inbox_puts_people_first_then_the_longest_wait(database: Database, tenants: tuple[str, str]) -> None:
    tenant = tenants[0]

    def conversation(handled_by: str, inbound_min_ago: int, answered: bool) -> str:
        lead_id = _lead(database, tenant, f"5511{uuid.uuid4().int % 10**9:09d}")
        with database.transaction() as cur:
            cur.execute("UPDATE conversations SET handled_by = %s WHERE lead_id = %s", (handled_by, lead_id))
            cur.execute("UPDATE messages SET sent_at = now() - make_interval(mins => %s) WHERE lead_id = %s",
                        (inbound_min_ago, lead_id))
            if answered:
                cur.execute("INSERT INTO messages (tenant_id, conversation_id, lead_id, provider, provider_message_id, "
                            "direction, sender_phone, message_type, body, sent_at, event_id, correlation_id, sent_by) "
                            "SELECT tenant_id, conversation_id, lead_id, provider, %s, 'outbound', sender_phone, "
                            "'text', 'resposta', sent_at + interval '1 minute', %s, 'cid-out', 'assistant' "
                            "FROM messages WHERE lead_id = %s", (uuid.uuid4().hex, uuid.uuid4().hex, lead_id))
        return lead_id

    answered = conversation("assistant", 30, answered=True)
    short_wait = conversation("assistant", 2, answered=False)
    person = conversation("human", 1, answered=False)
    long_wait = conversation("assistant", 10, answered=False)
    with database.transaction() as cur:
        rows = queries.inbox(cur, tenant)
    assert [str(r["lead_id"]) for r in rows] == [person, long_wait, short_wait, answered]
    assert rows[-1]["waiting_since"] is None and rows[-1]["last_direction"] == "outbound"


def test_the_console_role_can_do_what_the_console_does_and_no_more(database_url: str, database: Database,
                                                                  tenants: tuple[str, str]) -> None:
    """sql/021: a login in role ct_console (the console's DB user in the cloud) signs in, reads and records;
    it changes nothing else."""
    from urllib.parse import urlparse, urlunparse

    import pg8000.dbapi

    tenant = tenants[0]
    lead_id = _lead(database, tenant, f"5511{uuid.uuid4().int % 10**9:09d}")
    email, login = _email(), f"console_{uuid.uuid4().hex[:8]}"
    with database.transaction() as cur:
        user = add_user(cur, email=email, name="Ana", role="seller", tenant=tenant, password=PASSWORD)
        cur.execute(f'CREATE ROLE "{login}" LOGIN IN ROLE ct_console')
    parsed = urlparse(database_url)
    netloc = login + "@" + parsed.netloc.rsplit("@", 1)[-1]
    console_db = Database.for_url(urlunparse(parsed._replace(netloc=netloc)), size=1)
    try:
        with console_db.transaction() as cur:
            assert authenticate(cur, email, "errada-errada").user is None
            assert authenticate(cur, email, PASSWORD).user == user
            token, _ = sessions.create(cur, user)
            session = sessions.lookup(cur, token)
            assert session is not None
            assert queries.inbox(cur, tenant) and queries.timeline(cur, tenant, lead_id) and queries.board(cur, tenant)
            cur.execute("INSERT INTO console_actions (event_id, tenant_id, user_id, event_type, lead_id, "
                        "correlation_id) VALUES (%s, %s, %s, 'note_added', %s, 'c')",
                        (uuid.uuid4().hex, tenant, user.id, lead_id))
            sessions.revoke(cur, session)
        for forbidden in ("UPDATE leads SET stage = 'ganho'", "DELETE FROM messages", "DELETE FROM console_actions",
                          "INSERT INTO lead_notes (tenant_id, lead_id, body, author, event_id, correlation_id) "
                          "SELECT tenant_id, id, 'x', 'x', 'x', 'x' FROM leads LIMIT 1"):
            with pytest.raises(pg8000.dbapi.DatabaseError, match="permission denied"), console_db.transaction() as cur:
                cur.execute(forbidden)
    finally:
        console_db.close()
        with database.transaction() as cur:
            cur.execute(f'DROP OWNED BY "{login}"')
            cur.execute(f'DROP ROLE "{login}"')


def test_the_timeline_has_every_kind_of_item_in_order_with_its_correlation_id(
        database: Database, tenants: tuple[str, str]) -> None:
    tenant = tenants[0]
    lead_id = _lead(database, tenant, f"5511{uuid.uuid4().int % 10**9:09d}")  # an inbound message, cid-in
    with database.transaction() as cur:
        cur.execute("SELECT id FROM conversations WHERE lead_id = %s", (lead_id,))
        conversation = str(cur.fetchone()[0])
        cur.execute("INSERT INTO assistant_turns (tenant_id, inbound_event_id, conversation_id, lead_id, status, "
                    "detail, correlation_id, created_at) VALUES (%s, %s, %s, %s, 'answered', 'orcamento', "
                    "'cid-turn', now() + make_interval(secs => %s))",
                    (tenant, uuid.uuid4().hex, conversation, lead_id, 1))
        cur.execute("INSERT INTO pipeline_moves (tenant_id, lead_id, from_stage, to_stage, reason, applied, "
                    "occurred_at, event_id, correlation_id) VALUES (%s, %s, 'novo', 'qualificado', 'fatos', true, "
                    "now() + make_interval(secs => %s), %s, 'cid-move')", (tenant, lead_id, 2, uuid.uuid4().hex))
        cur.execute("INSERT INTO handoffs (tenant_id, conversation_id, lead_id, handled_by, reason, correlation_id, "
                    "created_at) VALUES (%s, %s, %s, 'human', 'lead_asked', 'cid-handoff', "
                    "now() + make_interval(secs => %s))",
                    (tenant, conversation, lead_id, 3))
        cur.execute("INSERT INTO proposals (tenant_id, lead_id, proposal_ref, amount, sent_at, correlation_id) "
                    "VALUES (%s, %s, %s, 1234.50, now() + make_interval(secs => %s), 'cid-proposal')",
                    (tenant, lead_id, uuid.uuid4().hex, 4))
        cur.execute("INSERT INTO obras (tenant_id, lead_id, obra_ref, title, status, correlation_id, created_at) "
                    "VALUES (%s, %s, %s, 'Sala', 'planejada', 'cid-obra', now() + make_interval(secs => %s))",
                    (tenant, lead_id, uuid.uuid4().hex, 5))
        cur.execute("INSERT INTO lead_notes (tenant_id, lead_id, body, author, event_id, correlation_id, created_at) "
                    "VALUES (%s, %s, 'ligar de manhã', 'Ana', %s, 'cid-note', now() + make_interval(secs => %s))",
                    (tenant, lead_id, uuid.uuid4().hex, 6))
        items = queries.timeline(cur, tenant, lead_id)
    assert [(i.kind, i.correlation_id) for i in items] == [
        ("message_in", "cid-in"), ("turn", "cid-turn"), ("move", "cid-move"), ("handoff", "cid-handoff"),
        ("proposal", "cid-proposal"), ("obra", "cid-obra"), ("note", "cid-note")]
    assert items[2].title == "Etapa: Novo → Qualificado" and items[3].body == "o lead pediu uma pessoa"
    assert items[4].body == "BRL 1234.50" and items[6].body == "ligar de manhã"


def test_an_action_whose_event_failed_shows_on_the_timeline(database: Database, tenants: tuple[str, str]) -> None:
    tenant, other = tenants
    lead_id = _lead(database, tenant, f"5511{uuid.uuid4().int % 10**9:09d}")
    with database.transaction() as cur:
        user = add_user(cur, email=_email(), name="Ana", role="seller", tenant=tenant, password=PASSWORD)
        for event_tenant, status in ((tenant, "failed"), (tenant, "processed"), (other, "failed")):
            event_id = uuid.uuid4().hex
            cur.execute("INSERT INTO events (event_id, event_type, tenant_id, source, correlation_id, status, "
                        "attempts, last_error, envelope, occurred_at, received_at) "
                        "VALUES (%s, 'reply_requested', %s, 'console', %s, %s, 3, "
                        "'SendError: evolution answered 401', '{}'::jsonb, now(), now())",
                        (event_id, event_tenant, f"cid-{status}-{event_tenant}", status))
            cur.execute("INSERT INTO console_actions (event_id, tenant_id, user_id, event_type, lead_id, "
                        "correlation_id) VALUES (%s, %s, %s, 'reply_requested', %s, 'c')",
                        (event_id, tenant, user.id, lead_id))
        failed = [i for i in queries.timeline(cur, tenant, lead_id) if i.kind == "failed"]
    assert [(i.correlation_id, i.body) for i in failed] == [
        (f"cid-failed-{tenant}", "SendError: evolution answered 401")]
    assert "envio da resposta" in failed[0].title and "3 tentativa" in failed[0].title
