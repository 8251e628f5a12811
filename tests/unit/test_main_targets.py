"""main.py: every topology entry point is a target, and loading one imports only its own module."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import main
from ops.stack import ROOT
from shared.topology import load_topology

_LOAD = """
import json, sys
import functions_framework
functions_framework.create_app(target=sys.argv[1], source=sys.argv[2])
payloads = sys.modules.get("shared.payloads")
built = [m.__name__ for m in vars(payloads).values() if isinstance(m, type) and issubclass(m, payloads.Payload)
         and m is not payloads.Payload and m.__pydantic_complete__] if payloads else []
print(json.dumps({"modules": sorted(sys.modules), "built": sorted(built)}))
"""

# What a target must not load: another function's parsers, clients and writers. Subscribers read envelopes
# the edge already normalised, so they need neither the phone nor the e-mail parser (leadgen_fetcher parses
# the Graph API's answers, so it does).
PARSERS = ("phonenumbers", "email_validator")
LEAD_SOURCES = ("shared.sources.lead_form", "shared.sources.typeform", "shared.sources.google_ads",
                "shared.sources.meta_leadgen")
WHATSAPP_SOURCES = ("shared.sources.evolution", "shared.sources.zapi", "shared.sources.meta_cloud",
                    "shared.sources.gupshup")
ELSEWHERE = ("openai", "argon2", "shared.console", "shared.assistant.service", "shared.assistant.llm")
STAYS_OUT: dict[str, tuple[str, ...]] = {
    "whatsapp": ("email_validator", *LEAD_SOURCES, "shared.writers", "shared.db", *ELSEWHERE),
    "leads": (*WHATSAPP_SOURCES, "shared.writers", "shared.db", *ELSEWHERE),
    "leads_writer": (*PARSERS, "shared.sources", *ELSEWHERE),
    "conversations_writer": (*PARSERS, "shared.sources", *ELSEWHERE),
    "pipeline_writer": (*PARSERS, "shared.sources", *ELSEWHERE),
    "obras_writer": (*PARSERS, "shared.sources", *ELSEWHERE),
    "reply_sender": (*PARSERS, "shared.sources", *ELSEWHERE),
    # Sellers never open the settings page's simulator: the assistant and the senders' settings load there.
    "console": (*PARSERS, "shared.sources", "shared.writers", "shared.assistant", "shared.senders", "openai"),
}


def loading(target: str) -> dict[str, list[str]]:
    """A fresh interpreter's modules once functions-framework loaded `target` from main.py, and the payload
    models it compiled."""
    env = {"PUBSUB_EMULATOR_HOST": "127.0.0.1:9", "GOOGLE_CLOUD_PROJECT": "ct-unit", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", _LOAD, target, str(ROOT / "main.py")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60, check=True)
    found: dict[str, list[str]] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def loaded_by(target: str) -> list[str]:
    return loading(target)["modules"]


def test_every_entry_point_is_a_target_and_nothing_else() -> None:
    assert sorted(main.TARGETS) == sorted(fn.entry_point for fn in load_topology().functions.values())


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no function target 'nope'"):
        main.nope  # noqa: B018 - the lookup is the test


@pytest.mark.parametrize("target", ["leads_writer", "whatsapp"])
def test_loading_a_target_imports_only_its_own_function_module(target: str) -> None:
    loaded = loaded_by(target)
    assert [m for m in loaded if m.startswith("functions.")] == [f"functions.{target}"]
    assert not [m for m in loaded if m.startswith("openai")]  # the assistant's client stays out
    assert "shared.writers.leadgen" not in loaded


@pytest.mark.parametrize("target", sorted(STAYS_OUT))
def test_a_target_loads_nothing_another_function_needs(target: str) -> None:
    loaded = loaded_by(target)
    assert not [m for m in loaded if m.startswith(STAYS_OUT[target])]


def test_the_edge_loads_the_parsers_it_uses_on_every_request() -> None:
    """Loaded with the function, not on its first request: they are part of its cold start."""
    assert {"phonenumbers", "shared.sources.evolution"} <= set(loaded_by("whatsapp"))
    assert {"phonenumbers", "email_validator", "shared.sources.lead_form"} <= set(loaded_by("leads"))


@pytest.mark.parametrize(("target", "models"), [
    ("whatsapp", ["MessageReceived", "MessageStatus"]),
    ("leads_writer", ["LeadCreated", "LeadRef", "NoteAdded"]),
    ("reply_sender", ["ReplyRequested"]),
    ("health", []),
])
def test_a_target_compiles_the_payload_models_of_its_own_event_types_only(target: str, models: list[str]) -> None:
    assert loading(target)["built"] == models
