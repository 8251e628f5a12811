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


# -- keeping the stack up ----------------------------------------------------------------------
class _Proc:
    """A process as the stack sees it: running until told it exited."""

    def __init__(self) -> None:
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


def test_a_dead_function_is_restarted_with_growing_backoff_and_the_emulator_is_fatal(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import io

    monkeypatch.setenv("CT_LOCAL_DIR", str(tmp_path))
    local = stack.Stack(out=io.StringIO())
    spawned: list[str] = []

    def spawn(name: str, cmd: list[str], env: dict[str, str]) -> None:
        local._specs[name] = (cmd, env)
        spawned.append(name)
        local.processes[name] = _Proc()  # type: ignore[assignment]

    monkeypatch.setattr(local, "_spawn", spawn)
    local._spawn("leads_writer", ["x"], {})
    local._spawn("pubsub-emulator", ["y"], {})
    spawned.clear()

    def dies_at(t: float) -> None:
        local.processes["leads_writer"].returncode = -9  # type: ignore[attr-defined]
        assert local.supervise(now=t) == []

    dies_at(100.0)
    assert local.supervise(now=100.5) == [] and spawned == []
    local.supervise(now=101.0)
    assert spawned == ["leads_writer"]  # after 1 s
    dies_at(102.0)
    local.supervise(now=103.0)
    assert spawned == ["leads_writer"]  # now it waits 2 s
    local.supervise(now=104.0)
    assert spawned == ["leads_writer"] * 2
    local.supervise(now=104.0 + stack.STEADY_SECONDS)  # up for a minute: the backoff starts over
    dies_at(200.0)
    local.supervise(now=201.0)
    assert spawned == ["leads_writer"] * 3
    local.processes["pubsub-emulator"].returncode = 1  # type: ignore[attr-defined]
    assert local.supervise(now=202.0) == ["pubsub-emulator"]
