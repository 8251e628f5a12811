"""Golden payloads: every provider's documented webhook bodies, read through the edge, against expected output.

Each `tests/fixtures/golden/<source>/<name>.input.json` is a body as the provider documents
it (the sources are cited in tests/fixtures/golden/INDEX.md); beside it,
`<name>.expected.json` is what the edge answers and publishes. An optional
`<name>.settings.json` is the tenant's source settings. After a deliberate change in
reading, rewrite the expectations with `UPDATE_GOLDEN=1` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from shared.sources import evolution, google_ads, gupshup, meta_cloud, meta_leadgen, typeform, zapi
from shared.sources.messages import MESSAGE_TYPES
from shared.sources.routing import SourceAdapter
from shared.tenants import SourceSettings
from tests.unit.edge_helpers import call, request

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
ADAPTERS: dict[str, SourceAdapter] = {
    "evolution": evolution.adapt,
    "zapi": zapi.adapt,
    "meta": meta_cloud.adapter("meta"),
    "360dialog": meta_cloud.adapter("360dialog"),
    "gupshup": gupshup.adapt,
    "typeform": typeform.adapt,
    "meta_leadgen": meta_leadgen.adapt,
    "google_ads": google_ads.adapt,
}
CASES = sorted(GOLDEN.glob("*/*.input.json"))


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def outcome(source: str, body: Any, settings: SourceSettings | None) -> dict[str, Any]:
    """The edge's answer and every envelope it published, without the per-request ids and clocks."""
    adapt = ADAPTERS[source]
    response, publisher = call(lambda inbound: adapt(inbound, settings), request(body), max_body_bytes=1 << 20)
    result: dict[str, Any] = {"status": response.status}
    if isinstance(response.body, dict) and response.status != 202:
        result["body"] = {k: v for k, v in response.body.items() if k != "correlation_id"}
    result["published"] = [
        {"event_type": e.event_type, "event_id": e.event_id, "source": e.source,
         "occurred_at": e.occurred_at.isoformat() if e.occurred_at != e.received_at else None,
         "payload": e.payload}
        for e in publisher.published
    ]
    return result


def test_the_golden_suite_covers_every_source_with_at_least_forty_payloads() -> None:
    sources = {path.parent.name for path in CASES}
    assert sources == set(ADAPTERS), sources
    assert len(CASES) >= 40
    index = (GOLDEN / "INDEX.md").read_text(encoding="utf-8")
    missing = [f"{p.parent.name}/{p.name}" for p in CASES if f"{p.parent.name}/{p.name}" not in index]
    assert missing == [], "every fixture is cited in INDEX.md"


@pytest.mark.parametrize("case", CASES, ids=[f"{p.parent.name}/{p.name.removesuffix('.input.json')}" for p in CASES])
def test_golden_payload(case: Path) -> None:
    settings_file = case.with_name(case.name.replace(".input.json", ".settings.json"))
    settings = SourceSettings.model_validate(_read(settings_file)) if settings_file.exists() else None
    result = outcome(case.parent.name, _read(case), settings)
    expected_file = case.with_name(case.name.replace(".input.json", ".expected.json"))
    if os.environ.get("UPDATE_GOLDEN") == "1":
        expected_file.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    # No documented payload is refused: it is published, or acknowledged as carrying nothing to record.
    assert result["status"] in (200, 202), result
    if result["status"] == 200:
        assert result["body"]["status"] == "ignored" and result["body"]["reason"] and not result["published"]
    for envelope in result["published"]:
        if envelope["event_type"] == "message_received":
            assert envelope["payload"]["message_type"] in MESSAGE_TYPES
            assert envelope["payload"]["raw_type"]
    assert result == _read(expected_file)
