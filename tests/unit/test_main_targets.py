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
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("functions.", "shared.writers.", "openai")))))
"""


def test_every_entry_point_is_a_target_and_nothing_else() -> None:
    assert sorted(main.TARGETS) == sorted(fn.entry_point for fn in load_topology().functions.values())


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no function target 'nope'"):
        main.nope  # noqa: B018 - the lookup is the test


@pytest.mark.parametrize("target", ["leads_writer", "whatsapp"])
def test_loading_a_target_imports_only_its_own_function_module(target: str) -> None:
    env = {"PUBSUB_EMULATOR_HOST": "127.0.0.1:9", "GOOGLE_CLOUD_PROJECT": "ct-unit", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", _LOAD, target, str(ROOT / "main.py")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert [m for m in loaded if m.startswith("functions.")] == [f"functions.{target}"]
    assert not [m for m in loaded if m.startswith("openai")]  # the assistant's client stays out
    assert "shared.writers.leadgen" not in loaded
