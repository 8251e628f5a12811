"""Which provider types a Terraform configuration uses, read from its *.tf files.

Why: the committed schemas hold only what terraform/ uses; the extractor and the
freshness test both need that list, so it is computed in one place. A block served by
another provider than its type's prefix says so (`provider = google-beta`).
"""

from __future__ import annotations

import re
from pathlib import Path

BLOCK = re.compile(r'^(resource|data|ephemeral)\s+"([a-z0-9_]+)"\s+"[^"]+"\s*\{', re.M)
PROVIDER_ARG = re.compile(r"^\s*provider\s*=\s*([a-z0-9-]+)", re.M)
BUILTIN = {"terraform"}  # terraform_data and terraform_remote_state come with Terraform itself


def block_body(text: str, start: int) -> str:
    """The text of the block whose `{` is at `start`, up to its matching `}` (strings skipped)."""
    depth, i, in_string = 0, start, False
    while i < len(text):
        c = text[i]
        if in_string:
            if c == "\\":
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1: i]
        i += 1
    return text[start + 1:]


def top_level(body: str) -> str:
    """The block's own lines, without its nested blocks (a nested `provider` would not count)."""
    out, depth = [], 0
    for line in body.splitlines():
        if depth == 0:
            out.append(line)
        depth += line.count("{") - line.count("}")
    return "\n".join(out)


def used_types(terraform_dir: Path) -> dict[str, dict[str, set[str]]]:
    """{provider: {"resource" | "data" | "ephemeral": {type, ...}}} over every *.tf file."""
    found: dict[str, dict[str, set[str]]] = {}
    for path in sorted(terraform_dir.glob("*.tf")):
        text = path.read_text()
        for m in BLOCK.finditer(text):
            kind, tf_type = m.groups()
            chosen = PROVIDER_ARG.search(top_level(block_body(text, m.end() - 1)))
            provider = chosen.group(1).split(".")[0] if chosen else tf_type.split("_", 1)[0]
            if provider not in BUILTIN:
                found.setdefault(provider, {}).setdefault(kind, set()).add(tf_type)
    return found
