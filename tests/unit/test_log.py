import json
import logging

import pytest

from shared.log import JsonFormatter, log_context


def _format(record_msg: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.makeLogRecord({"msg": record_msg, "args": args, "levelname": "WARNING", "name": "t", **extra})
    return dict(json.loads(JsonFormatter().format(record)))


def test_lines_are_cloud_logging_json_with_context_and_masking() -> None:
    with log_context(function="leads", correlation_id="c-1", event_id="e-1", event_type="lead_created"):
        line = _format("lead %s wrote from %s", "5511999998888", "joao@teste.com", reason="phone 11999998888")
    assert line["severity"] == "WARNING"
    assert line["function"] == "leads"
    assert (line["correlation_id"], line["event_id"], line["event_type"]) == ("c-1", "e-1", "lead_created")
    assert "99999" not in json.dumps(line) and "joao@" not in json.dumps(line)


def test_context_ends_with_its_block() -> None:
    with log_context(correlation_id="inner"):
        pass
    assert "correlation_id" not in _format("x")


def test_exceptions_are_logged_masked() -> None:
    try:
        raise ValueError("bad phone 5511999998888")
    except ValueError:
        import sys

        record = logging.makeLogRecord({"msg": "boom", "levelname": "ERROR", "exc_info": sys.exc_info()})
    line = json.loads(JsonFormatter().format(record))
    assert "ValueError" in line["error"] and "99999" not in line["error"]


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "ERROR", "CRITICAL"])
def test_severity_follows_level(level: str) -> None:
    assert _format("x", levelname=level)["severity"] == level
