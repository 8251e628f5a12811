"""`ctower trace ID --project P`: the functions' log lines from Cloud Logging, through the real client.

The log lines are the product's own (shared.log's JSON formatter), stored by a stand-in of
Cloud Logging's REST API as Cloud Run stores a function's stdout; the stand-in answers only
the filter shape `ctower trace` writes (correlation ids, a time window) and pages its answers.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from ops.cli import main
from ops.standins.google import GoogleStandIns
from shared.db import Database
from shared.envelope import build_envelope
from shared.log import JsonFormatter, log_context
from shared.payloads import LeadCreated
from shared.writers import writer_for
from shared.writers.ledger import process

pytestmark = pytest.mark.integration


@pytest.fixture
def google(tmp_path: Path) -> Iterator[GoogleStandIns]:
    stand_ins = GoogleStandIns(tmp_path, f"ct-log-{uuid.uuid4().hex[:6]}")
    yield stand_ins
    stand_ins.close()


def log_line(correlation_id: str, function: str, message: str) -> str:
    """A line exactly as a function writes it to stdout."""
    record = logging.LogRecord("shared.edge", logging.INFO, __file__, 1, message, (), None)
    with log_context(correlation_id=correlation_id, function=function):
        return JsonFormatter().format(record)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_lead(db: Database, phone: str) -> str:
    """A lead_created event written by the ledger and the leads writer; returns its correlation id."""
    cid = str(uuid.uuid4())
    envelope = build_envelope(event_type="lead_created", payload=LeadCreated(phone=phone, name="Log"),
                              tenant="default", source="test", correlation_id=cid, source_id=cid)
    process(db, envelope, f"m-{cid}", writer_for("lead_created"))
    return cid


def ctower_trace(google: GoogleStandIns, database_url: str, *args: str) -> dict[str, object]:
    env: dict[str, str | None] = {**google.env(), "PUBSUB_EMULATOR_HOST": None}
    result = CliRunner().invoke(main, ["trace", *args, "--project", google.project, "--database-url", database_url,
                                       "--json"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_trace_shows_the_requests_log_lines_in_its_window(google: GoogleStandIns, database_url: str,
                                                          clean_db: Database) -> None:
    cid = write_lead(clean_db, "11960001111")
    now = datetime.now(UTC)
    for i in range(130):  # more than a page
        google.logging.ingest(log_line(cid, "leads", f"step {i} for 11960001111"), "ct-leads",
                              stamp(now - timedelta(seconds=60) + timedelta(milliseconds=i)))
    google.logging.ingest(log_line(cid, "leads", "a day before: outside the window"), "ct-leads",
                          stamp(now - timedelta(days=1)))
    google.logging.ingest(log_line(str(uuid.uuid4()), "leads", "another request"), "ct-leads", stamp(now))

    found = ctower_trace(google, database_url, cid)
    logs = found["logs"]
    assert isinstance(logs, list) and len(logs) == 130
    assert logs[0]["message"].startswith("step 0 for ") and "11960001111" not in json.dumps(logs)  # masked
    assert {line["function"] for line in logs} == {"leads"} and found["logs_problem"] is None
    calls = google.logging.list_calls()
    assert len(calls) == 2  # paged: 100 + 30
    assert all(c.principal == google.credentials.email for c in calls)
    sent_filter = calls[0].body["filter"]
    assert sent_filter.startswith(f'jsonPayload.correlation_id="{cid}" AND timestamp>="')
    timeline = found["timeline"]
    assert isinstance(timeline, list)
    assert [s["what"] for s in timeline].count("log INFO") == 130 and any(s["what"] == "event lead_created"
                                                                         for s in timeline)


def test_trace_still_answers_when_the_logs_cannot_be_read(google: GoogleStandIns, database_url: str,
                                                          clean_db: Database) -> None:
    cid = write_lead(clean_db, "11960002222")
    google.logging.project = "someone-elses-project"  # our project's logs are not readable: 403
    found = ctower_trace(google, database_url, cid)
    assert found["logs"] == [] and "Cloud Logging not read" in str(found["logs_problem"])
    assert found["gcloud"] and found["events"]
