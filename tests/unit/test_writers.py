"""Every writer is a verb over its event type's payload model, and writer_for refuses a mismatched envelope."""

from __future__ import annotations

import importlib
import inspect
from typing import get_type_hints

import pytest

from shared.db import Cursor
from shared.envelope import Envelope, build_envelope
from shared.payloads import PAYLOAD_MODELS, LeadCreated
from shared.writers import WRITERS, writer_for


@pytest.mark.parametrize("event_type", sorted(WRITERS))
def test_each_writer_takes_its_event_types_payload(event_type: str) -> None:
    module, function = WRITERS[event_type]
    verb = getattr(importlib.import_module(module), function)
    assert list(inspect.signature(verb).parameters)[:2] == ["cur", "envelope"]
    hints = get_type_hints(verb)
    payload = list(inspect.signature(verb).parameters)[2]
    assert hints["cur"] is Cursor and hints["envelope"] is Envelope
    assert hints[payload] is PAYLOAD_MODELS[event_type]


def test_a_writer_refuses_another_event_types_envelope() -> None:
    lead = build_envelope(event_type="lead_created", payload=LeadCreated(phone="+5511999990000"),
                          tenant="default", source="test", correlation_id="c-1")
    with pytest.raises(TypeError, match="stage_changed writer was given a lead_created envelope"):
        writer_for("stage_changed")(object(), lead)  # type: ignore[arg-type]  # refused before the cursor is used
