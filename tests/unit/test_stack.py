"""The local stack refuses to start half-way, saying what to install."""

from pathlib import Path

import pytest

from ops import stack
from ops.localdb import with_database
from shared.db import connect_kwargs


def test_missing_gcloud_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack.shutil, "which", lambda name: None)
    with pytest.raises(stack.StackError, match="gcloud components install beta pubsub-emulator"):
        stack.emulator_command(8085, "p")


def test_missing_emulator_component_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_gcloud = tmp_path / "sdk" / "bin" / "gcloud"
    fake_gcloud.parent.mkdir(parents=True)
    fake_gcloud.touch()
    monkeypatch.setattr(stack.shutil, "which", lambda name: str(fake_gcloud) if name == "gcloud" else "/usr/bin/java")
    monkeypatch.setattr(stack, "Path", lambda p: tmp_path / "nowhere" if str(p).startswith("/usr/lib") else Path(p))
    with pytest.raises(stack.StackError, match="pubsub-emulator"):
        stack.emulator_command(8085, "p")


def test_ports_default_to_the_documented_ones_and_can_be_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    assert stack.port_for("leads", 8092) == 8092
    monkeypatch.setenv("CT_PORT_LEADS", "9092")
    assert stack.port_for("leads", 8092) == 9092


def test_database_urls_with_socket_dirs_and_hosts() -> None:
    assert connect_kwargs("postgresql://postgres:@/control_tower?host=/tmp/pg") == {
        "user": "postgres", "database": "control_tower", "unix_sock": "/tmp/pg/.s.PGSQL.5432"}
    assert connect_kwargs("postgresql://app:s%40cret@db.internal:6543/ct") == {
        "user": "app", "database": "ct", "password": "s@cret", "host": "db.internal", "port": 6543}
    with pytest.raises(ValueError, match="postgresql://"):
        connect_kwargs("mysql://x@y/z")
    assert with_database("postgresql://postgres:@/postgres?host=/tmp/pg", "ct") == \
        "postgresql://postgres:@/ct?host=/tmp/pg"
