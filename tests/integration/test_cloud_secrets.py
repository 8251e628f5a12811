"""SECRETS_BACKEND=secretmanager through the real google-cloud-secret-manager client, against a local stand-in.

The stand-in speaks Secret Manager's REST API and checks the caller's OAuth token (Application
Default Credentials from a service-account key whose token endpoint is another stand-in). The
product reaches it only through SECRET_MANAGER_ENDPOINT; everything else is the cloud path.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ops.cli import main
from ops.standins.google import GoogleStandIns
from ops.tenants import read_config
from shared.db import Database
from shared.secrets import MIN_REFRESH_SECONDS, SecretStore, SecretUnavailable
from shared.tenants import TenantDirectory, parse_config
from shared.verification import with_secret
from tests.cloud_function import ServedFunction, serve_function
from tests.conftest import RunningStack, wait_for
from tests.http import post

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def google(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[GoogleStandIns]:
    stand_ins = GoogleStandIns(tmp_path, f"ct-sm-{uuid.uuid4().hex[:6]}")
    for key, value in stand_ins.env().items():
        monkeypatch.setenv(key, value)
    yield stand_ins
    stand_ins.close()


def store(google: GoogleStandIns, clock: Clock, ttl: float = 300) -> SecretStore:
    return SecretStore(backend="secretmanager", project=google.project, ttl_seconds=ttl, clock=clock)


def test_a_value_is_read_once_per_ttl(google: GoogleStandIns) -> None:
    google.secret_manager.create("ct-acme-form-token", "first\n")  # `echo first | gcloud secrets versions add`
    clock = Clock()
    secrets = store(google, clock)
    assert secrets.get("ct-acme-form-token") == "first"
    clock.now += 299
    assert secrets.get("ct-acme-form-token") == "first"
    assert google.secret_manager.accesses("ct-acme-form-token") == 1  # cached within the TTL
    assert google.secret_manager.requests[0].principal == google.credentials.email  # the client sent ADC's token
    google.secret_manager.create("ct-acme-form-token", "second")
    clock.now += 2  # past the TTL: the new version, no restart
    assert secrets.get("ct-acme-form-token") == "second"
    assert google.secret_manager.accesses("ct-acme-form-token") == 2


def test_a_rotated_secret_is_honoured_on_the_first_failed_check(google: GoogleStandIns) -> None:
    google.secret_manager.create("ct-acme-form-token", "old-token")
    clock = Clock()
    secrets = store(google, clock)
    assert with_secret("ct-acme-form-token", lambda key: key == b"old-token", secrets)
    google.secret_manager.create("ct-acme-form-token", "new-token")
    clock.now += 5  # re-read on a failed check is limited to one per MIN_REFRESH_SECONDS
    assert not with_secret("ct-acme-form-token", lambda key: key == b"new-token", secrets)
    clock.now += MIN_REFRESH_SECONDS
    assert with_secret("ct-acme-form-token", lambda key: key == b"new-token", secrets)
    assert google.secret_manager.accesses("ct-acme-form-token") == 2


@pytest.mark.parametrize("case", ["missing", "denied", "no_version"])
def test_an_unreadable_secret_is_named_in_the_log_never_its_value(
        google: GoogleStandIns, case: str, caplog: pytest.LogCaptureFixture) -> None:
    name = "ct-acme-meta-app-secret"
    if case == "denied":
        google.secret_manager.create(name, "the-value-never-logged")
        google.secret_manager.denied.add(name)
    elif case == "no_version":
        google.secret_manager.create(name)
    with caplog.at_level(logging.ERROR), pytest.raises(SecretUnavailable) as raised:
        store(google, Clock()).get(name)
    expected = "PERMISSION_DENIED" if case == "denied" else "NOT_FOUND"
    assert name in str(raised.value) and expected in str(raised.value)
    lines = [r.getMessage() for r in caplog.records if r.name == "shared.secrets"]
    assert lines and name in lines[0] and expected in lines[0], lines
    assert "the-value-never-logged" not in caplog.text


def test_tenants_publish_writes_the_document_the_edge_reads(google: GoogleStandIns, database_url: str,
                                                           database: Database) -> None:
    runner = CliRunner()
    google.secret_manager.create("ct-tenants-config")  # Terraform creates it, empty
    result = runner.invoke(main, ["tenants", "add", "umbrella", "--name", "Umbrella", "--database-url", database_url,
                                  "--to", "secret:ct-tenants-config"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"projects/{google.project}/secrets/ct-tenants-config/versions/1" in result.output
    with database.transaction() as cur:
        expected = read_config(cur)
    directory = TenantDirectory(secret_name="ct-tenants-config", store=store(google, Clock()))
    assert directory.config() == expected == parse_config(google.secret_manager.latest("ct-tenants-config"))
    assert directory.get("umbrella") is not None
    runner.invoke(main, ["tenants", "remove", "umbrella", "--database-url", database_url], catch_exceptions=False)


def test_publishing_to_a_secret_terraform_did_not_create_fails_clearly(google: GoogleStandIns,
                                                                      database_url: str) -> None:
    result = CliRunner().invoke(main, ["tenants", "publish", "--database-url", database_url,
                                       "--to", "secret:ct-tenants-typo"])
    assert result.exit_code == 1
    assert "ct-tenants-typo" in result.output and "NotFound" in result.output


# -- the edge, served as deployed, reading tenants and secrets from the stand-in --------------------
def ctower(database_url: str, *args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(main, ["tenants", *args, "--database-url", database_url], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def cloud_leads(stack: RunningStack, tmp_path: Path, database_url: str) -> Iterator[tuple[ServedFunction,
                                                                                            GoogleStandIns]]:
    """The `leads` function with the cloud's secrets configuration, publishing to the stack's emulator.

    Tenants: `cloudco` (its form token in Secret Manager) and `cloudless` (naming a secret never created).
    """
    google = GoogleStandIns(tmp_path, stack.project)
    google.secret_manager.create("ct-tenants-config")
    google.secret_manager.create("ct-cloudco-form-token", "cloudco-token-v1")
    # set-source refuses a secret with no value: cloudless's exists while it is set, and is deleted after
    # (an operator's mistake the edge must answer 503 to, naming the secret).
    google.secret_manager.create("ct-cloudless-form-token", "soon-deleted")
    in_the_cloud = {**google.env(), "SECRETS_BACKEND": "secretmanager"}
    for tenant in ("cloudco", "cloudless"):
        ctower(database_url, "add", tenant, "--name", tenant.title(), "--no-publish")
    ctower(database_url, "set-source", "cloudco", "leads/form", "--secret", "ct-cloudco-form-token", "--no-publish",
           env=in_the_cloud)
    ctower(database_url, "set-source", "cloudless", "leads/form", "--secret", "ct-cloudless-form-token",
           "--no-publish", env=in_the_cloud)
    del google.secret_manager.secrets["ct-cloudless-form-token"]
    ctower(database_url, "publish", "--to", "secret:ct-tenants-config", env=google.env())
    env = {**google.env(), "SECRETS_BACKEND": "secretmanager", "TENANTS_SECRET": "ct-tenants-config",
           "TENANTS_TTL_SECONDS": "1", "SECRETS_TTL_SECONDS": "1",
           "PUBSUB_EMULATOR_HOST": stack.description["pubsub_emulator_host"]}
    served = serve_function("leads", env, tmp_path)
    yield served, google
    served.stop()
    google.close()
    for tenant in ("cloudco", "cloudless"):
        ctower(database_url, "remove", tenant, "--no-publish")


def test_the_edge_follows_secret_manager_without_a_restart(cloud_leads: tuple[ServedFunction, GoogleStandIns],
                                                          database_url: str) -> None:
    served, google = cloud_leads
    lead = {"phone": "11955550001", "name": "Cloud Path"}
    url = served.url + "/cloudco/form"
    assert post(url, lead, headers={"X-Webhook-Token": "cloudco-token-v1"}).status == 202
    google.secret_manager.create("ct-cloudco-form-token", "cloudco-token-v2")  # rotated
    time.sleep(1.2)  # SECRETS_TTL_SECONDS
    assert post(url, lead, headers={"X-Webhook-Token": "cloudco-token-v1"}).status == 401
    assert post(url, lead, headers={"X-Webhook-Token": "cloudco-token-v2"}).status == 202

    google.secret_manager.denied.add("ct-cloudco-form-token")  # the function's account lost secretAccessor
    time.sleep(1.2)
    denied = post(url, lead, headers={"X-Webhook-Token": "cloudco-token-v2"})
    assert denied.status == 503 and denied.headers.get("retry-after"), denied.text
    log = wait_for(lambda: "PERMISSION_DENIED" in served.log() and served.log())
    line = next(x for x in log.splitlines() if "PERMISSION_DENIED" in x)
    assert "ct-cloudco-form-token" in line and "cloudco-token-v" not in log  # the name, never a value

    missing = post(served.url + "/cloudless/form", lead, headers={"X-Webhook-Token": "anything"})
    assert missing.status == 503
    log = wait_for(lambda: "ct-cloudless-form-token" in served.log() and served.log())
    assert any("ct-cloudless-form-token" in x and "NOT_FOUND" in x for x in log.splitlines())

    # `ctower tenants remove` publishes a new version; the edge closes the door within TENANTS_TTL_SECONDS.
    ctower(database_url, "remove", "cloudless", "--to", "secret:ct-tenants-config", env=google.env())
    wait_for(lambda: post(served.url + "/cloudless/form", lead, headers={"X-Webhook-Token": "x"}).status == 404,
             timeout=10)
