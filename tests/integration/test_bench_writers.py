"""The writers bench counts what it claims: round trips per envelope, and where each envelope's time goes."""

from __future__ import annotations

import uuid

import pytest

from bench import writers
from ops.localdb import ensure_database
from shared.db import Database
from shared.migrations import migrate

pytestmark = pytest.mark.integration


def test_every_writer_is_one_round_trip_and_its_cpu_and_wal_are_measured(pg_server_url: str) -> None:
    url = ensure_database(pg_server_url, f"ct_bench_{uuid.uuid4().hex[:10]}")  # its rows stay out of the tests' db
    db = Database.for_url(url, size=1)
    migrate(db)
    db.close()

    count = 20
    floor, *figures = writers.measure(url, count=count)

    # Each statement is prepared once per connection: one round trip more, once.
    assert floor.statements == 3.0
    assert floor.round_trips == pytest.approx(3.0, abs=1 / floor.count)
    for figure in figures:
        expected = 2.0 if figure.name.startswith("leadgen_received") else 1.0  # it asks the ledger first
        assert figure.statements == expected, figure.name
        assert figure.round_trips == pytest.approx(expected, abs=2 / count), figure.name
        costs = figure.costs
        assert costs is not None
        assert costs.server_us is not None and costs.floor_server_us is not None, "the backend runs here"
        assert costs.client_us > 0 and costs.server_us > 0 and costs.floor_client_us > 0, figure.name
        # The floor writes one row; every writer writes at least the ledger row with the envelope, plus its own.
        assert costs.wal_bytes > costs.floor_wal_bytes > 0, figure.name
