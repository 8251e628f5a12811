"""Which provider types a Terraform configuration uses, read from its *.tf files.

Why: the committed schemas hold only what terraform/ uses; the extractor and the
freshness test both need that list, so it is computed in one place.
"""

from __future__ import annotations

import re
from pathlib import Path

BLOCK = re.compile(r'^(resource|data|ephemeral)\s+"([a-z0-9_]+)"', re.M)
BUILTIN = {"terraform"}  # terraform_data and terraform_remote_state come with Terraform itself


def used_types(terraform_dir: Path) -> dict[str, dict[str, set[str]]]:
    """{provider: {"resource" | "data" | "ephemeral": {type, ...}}} over every *.tf file."""
    found: dict[str, dict[str, set[str]]] = {}
    for path in sorted(terraform_dir.glob("*.tf")):
        for kind, tf_type in BLOCK.findall(path.read_text()):
            provider = tf_type.split("_", 1)[0]
            if provider not in BUILTIN:
                found.setdefault(provider, {}).setdefault(kind, set()).add(tf_type)
    return found
