"""Lead facts learned by the assistant, and the stage they qualify the lead for.

Facts only fill blanks: a column or `extra` key that already has a value (typed by a
seller, a form, or an earlier turn) is never overwritten.
"""

from __future__ import annotations

import json
from typing import Any

from shared.assistant.config import FactSpec, QualificationRule
from shared.db import Cursor
from shared.payloads import STAGES


def apply_facts(cur: Cursor, *, tenant: str, lead_id: str, facts: dict[str, Any], specs: dict[str, FactSpec],
                correlation_id: str) -> None:
    known = {name: value for name, value in facts.items() if name in specs and value not in (None, "")}
    if not known:
        return
    columns = {spec.column: str(known[name]) for name, spec in specs.items() if spec.column and name in known}
    extra = {name: value for name, value in known.items() if not specs[name].column}
    cur.execute(
        "UPDATE leads SET name = COALESCE(name, %s), location = COALESCE(location, %s), "
        "project_type = COALESCE(project_type, %s), extra = %s::jsonb || extra, last_correlation_id = %s, "
        "updated_at = now() WHERE id = %s AND tenant_id = %s",
        (columns.get("name"), columns.get("location"), columns.get("project_type"), json.dumps(extra),
         correlation_id, lead_id, tenant),
    )


def qualified_stage(rules: list[QualificationRule], known: dict[str, Any], current: str) -> str | None:
    """The furthest stage whose rule is met and that is ahead of `current`, or None."""
    rank = {stage: i for i, stage in enumerate(STAGES)}
    best: str | None = None
    for rule in rules:
        if rule.stage not in rank or not all(known.get(f) not in (None, "") for f in rule.when_facts):
            continue
        if rank[rule.stage] > rank.get(current, 0) and (best is None or rank[rule.stage] > rank[best]):
            best = rule.stage
    return best
