"""Every writer is a verb from its event type's payload model to its SQL function's call; writer_for refuses a
mismatched envelope."""

from __future__ import annotations

import importlib
import inspect
from typing import get_type_hints

import pytest

from shared.envelope import Envelope, build_envelope
from shared.payloads import PAYLOAD_MODELS, LeadCreated
from shared.writers import WRITERS, writer_for
from shared.writers.calls import Call


@pytest.mark.parametrize("event_type", sorted(WRITERS))
def test_each_writer_takes_its_event_types_payload(event_type: str) -> None:
    module, function = WRITERS[event_type]
    verb = getattr(importlib.import_module(module), function)
    envelope, payload = list(inspect.signature(verb).parameters)
    assert envelope == "envelope"
    hints = get_type_hints(verb)
    assert hints["envelope"] is Envelope
    assert hints[payload] is PAYLOAD_MODELS[event_type]
    assert hints["return"] in (Call, Call | None)


def test_a_writer_refuses_another_event_types_envelope() -> None:
    lead = build_envelope(event_type="lead_created", payload=LeadCreated(phone="+5511999990000"),
                          tenant="default", source="test", correlation_id="c-1")
    with pytest.raises(TypeError, match="stage_changed writer was given a lead_created envelope"):
        writer_for("stage_changed")(object(), lead)  # type: ignore[arg-type]  # refused before the cursor is used


def test_only_a_write_functions_name_goes_into_the_sql() -> None:
    assert Call("ct_note_added", ()).sql("e.ev") == "ct_note_added(e.ev)"
    assert Call("ct_won", (1, 2)).sql("e.ev") == "ct_won(e.ev, %s, %s)"
    with pytest.raises(ValueError, match="is not a write function's name"):
        Call("ct_won(e.ev); DROP TABLE leads; --", ())
