"""The writers' pool on Cloud SQL: the real cloud-sql-python-connector, a stand-in Admin API, a TLS front.

Nothing here replaces the connector: it fetches the instance's settings and an ephemeral
certificate over HTTP (CLOUD_SQL_ADMIN_ENDPOINT), dials 127.x.y.z:3307 with TLS 1.3 and its
client certificate, and pg8000 speaks Postgres through it to the embedded server.
"""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.standins.cloud import WRITER_DB_USER, LocalCloud, grant_iam_user
from ops.standins.google import SERVICE_ACCOUNT
from shared.config import load_settings
from shared.db import Database, reset_connector
from shared.envelope import build_envelope
from shared.payloads import LeadCreated
from shared.writers import writer_for
from shared.writers.ledger import Result, process
from tests.conftest import query

pytestmark = pytest.mark.integration
IAM_USER = WRITER_DB_USER  # what Terraform sets as DB_USER


@pytest.fixture
def cloud_sql(tmp_path: Path, database_url: str, database: Database,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCloud]:
    cloud = LocalCloud.start(tmp_path, f"ct-sql-{uuid.uuid4().hex[:6]}", database_url)
    grant_iam_user(database)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    for key, value in {**cloud.stand_in_env(), **cloud.values()}.items():
        monkeypatch.setenv(key, value)
    reset_connector()
    yield cloud
    reset_connector()
    cloud.close()


def pool(size: int = 2) -> Database:
    settings = load_settings()
    assert settings.database_url is None and settings.cloud_sql_instance  # the Cloud SQL path, nothing else
    return Database(settings, size=size)


def write(db: Database, phone: str) -> Result:
    """One lead_created envelope through the ledger and the leads writer, as the subscriber runs it."""
    envelope = build_envelope(event_type="lead_created", payload=LeadCreated(phone=phone, name="Nuvem"),
                              tenant="default", source="test", correlation_id=f"c-{phone}", source_id=phone)
    return process(db, envelope, f"m-{phone}", writer_for(envelope.event_type))


def test_the_writers_pool_writes_through_the_connector_as_the_iam_user(cloud_sql: LocalCloud,
                                                                        clean_db: Database) -> None:
    db = pool()
    try:
        assert write(db, "11960000001") == Result.PROCESSED
        assert query(db, "SELECT current_user AS u") == [{"u": IAM_USER}]
    finally:
        db.close()
    assert query(clean_db, "SELECT phone FROM leads") == [{"phone": "5511960000001"}]
    issued = cloud_sql.instance.issued
    assert len(issued) == 1 and issued[0].iam_user == IAM_USER  # the certificate carries the IAM login
    admin_calls = [r.principal for r in cloud_sql.admin.requests]
    assert admin_calls and set(admin_calls) == {SERVICE_ACCOUNT}  # ADC's token on every Admin API call


def test_the_full_service_account_email_is_shortened_as_cloud_sql_names_iam_users(
        cloud_sql: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_USER", SERVICE_ACCOUNT)  # the connector strips .gserviceaccount.com for Postgres
    db = pool()
    try:
        assert query(db, "SELECT current_user AS u") == [{"u": IAM_USER}]
    finally:
        db.close()


def test_a_user_other_than_the_tokens_is_refused(cloud_sql: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_USER", "someone-else@ct-standin.iam")
    db = pool()
    try:
        with pytest.raises(Exception, match="IAM service account authentication failed"):
            query(db, "SELECT 1")
    finally:
        db.close()


def test_without_iam_auth_no_login_token_is_sent(cloud_sql: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_IAM_AUTH", "false")
    monkeypatch.setenv("DB_USER", "postgres")
    db = pool()
    try:
        assert query(db, "SELECT current_user AS u") == [{"u": "postgres"}]
    finally:
        db.close()
    assert [i.iam_user for i in cloud_sql.instance.issued] == [None]


def test_private_ip_is_used_only_when_asked(cloud_sql: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud_sql.instance.private_ip, cloud_sql.instance.front = cloud_sql.front.ip, None  # a private-IP-only instance
    db = pool()
    try:
        with pytest.raises(Exception, match="PRIMARY"):  # the connector names the IP type it did not find (public)
            query(db, "SELECT 1")
    finally:
        db.close()
    monkeypatch.setenv("DB_PRIVATE_IP", "true")
    db = pool()
    try:
        assert query(db, "SELECT 1 AS one") == [{"one": 1}]
    finally:
        db.close()


def test_connections_cut_by_the_front_are_replaced_before_the_next_write(cloud_sql: LocalCloud,
                                                                         clean_db: Database) -> None:
    db = pool(size=2)
    try:
        with db.connection(), db.connection():  # two pooled connections
            pass
        assert write(db, "11960000002") == Result.PROCESSED
        assert cloud_sql.front.drop_all() == 2  # a maintenance event, a front restart
        time.sleep(0.2)
        assert write(db, "11960000003") == Result.PROCESSED  # no error: the dead ones were dropped first
        assert write(db, "11960000004") == Result.PROCESSED
        assert cloud_sql.front.accepted == 3
    finally:
        db.close()
    assert len(query(clean_db, "SELECT id FROM leads")) == 3


def test_an_outage_fails_the_write_and_the_pool_recovers_when_the_instance_is_back(cloud_sql: LocalCloud,
                                                                                   clean_db: Database) -> None:
    db = pool(size=1)
    try:
        assert write(db, "11960000005") == Result.PROCESSED
        cloud_sql.front.stop()
        with pytest.raises(Exception):  # noqa: B017 - the writer raises: Pub/Sub retries the message
            query(db, "SELECT 1")
        cloud_sql.front.start()
        assert write(db, "11960000006") == Result.PROCESSED
    finally:
        db.close()


def test_a_certificate_near_expiry_is_renewed_on_the_next_connect(cloud_sql: LocalCloud) -> None:
    # The connector renews a certificate within 4 minutes of its expiry (lazy refresh, as configured).
    cloud_sql.admin.cert_lifetime = datetime.timedelta(minutes=4, seconds=3)
    db = pool(size=1)
    try:
        assert query(db, "SELECT 1 AS one") == [{"one": 1}]
        assert cloud_sql.admin.certificates_issued() == 1
        cloud_sql.front.drop_all()
        assert query(db, "SELECT 2 AS two") == [{"two": 2}]
        assert cloud_sql.admin.certificates_issued() == 1  # still valid long enough: reused
        time.sleep(3.5)
        cloud_sql.front.drop_all()
        assert query(db, "SELECT 3 AS three") == [{"three": 3}]
        assert cloud_sql.admin.certificates_issued() == 2  # renewed before use
        assert not [r for r in cloud_sql.front.refused if "tls" in r], cloud_sql.front.refused
    finally:
        db.close()


def test_the_embedded_postgres_path_also_drops_a_terminated_connection(database_url: str,
                                                                       database: Database) -> None:
    db = Database.for_url(database_url, size=1)
    try:
        pid = query(db, "SELECT pg_backend_pid() AS pid")[0]["pid"]
        assert query(database, "SELECT pg_terminate_backend(%s) AS done", pid) == [{"done": True}]
        time.sleep(0.2)
        assert query(db, "SELECT pg_backend_pid() AS pid")[0]["pid"] != pid  # a new connection, no error
    finally:
        db.close()


def test_a_long_idle_connection_is_proved_with_one_round_trip_and_kept(database_url: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shared.db.IDLE_PING_SECONDS", 0.0)
    db = Database.for_url(database_url, size=1)
    try:
        pid = query(db, "SELECT pg_backend_pid() AS pid")[0]["pid"]
        with db.connection() as conn:
            before = conn._ct_released
        assert query(db, "SELECT pg_backend_pid() AS pid")[0]["pid"] == pid  # pinged, alive, reused
        assert before > 0
    finally:
        db.close()
