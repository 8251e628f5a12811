"""Meta Lead Ads, the parts both sides share: the source's name and the Graph API lead as `lead_created`.

The webhook parser (shared/sources/meta_leadgen.py) names the source; the Lead Ads writer
(shared/writers/leadgen.py) turns the fetched lead into a payload. Pure: no HTTP, no I/O.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from shared import emails, phones  # noqa: F401 - the lead's phone and e-mail are parsed on every event
from shared.payloads import LeadCreated, LeadgenReceived

SOURCE = "meta_leadgen"
TEST_LEAD_MARK = "<test lead:"  # Meta's Lead Ads Testing Tool fills every answer with "<test lead: dummy data ...>"


def lead_from_graph(data: dict[str, Any], ref: LeadgenReceived) -> LeadCreated | None:
    """The Graph API lead (`field_data[]` of `{name, values}`) as `lead_created`.

    None for a test lead with no usable contact (the testing tool's dummy data); a real
    lead with no usable contact raises ValueError, so it retries and is dead-lettered.
    """
    answers: dict[str, Any] = {}
    for i, item in enumerate(data.get("field_data") or []):
        if not isinstance(item, dict):
            continue
        raw_values = item.get("values")
        values: list[Any] = raw_values if isinstance(raw_values, list) else []
        answers[str(item.get("name") or f"field_{i}")] = values[0] if len(values) == 1 else values
    is_test = any(isinstance(v, str) and v.startswith(TEST_LEAD_MARK) for v in answers.values())
    name = answers.get("full_name") or " ".join(
        str(answers[k]) for k in ("first_name", "last_name") if isinstance(answers.get(k), str)) or None
    fields: dict[str, Any] = {
        "name": name if isinstance(name, str) else None,
        "phone": answers.get("phone_number") if isinstance(answers.get("phone_number"), str) else None,
        "email": answers.get("email") if isinstance(answers.get("email"), str) else None,
        "source": SOURCE,
        "source_lead_id": ref.leadgen_id,
        "form_id": data.get("form_id") or ref.form_id,
        "campaign_id": data.get("campaign_id"),
        "adset_id": data.get("adset_id") or ref.adgroup_id,
        "ad_id": data.get("ad_id") or ref.ad_id,
        "is_test": is_test or None,
        "answers": answers,
        "extra": {k: data[k] for k in ("is_organic", "platform", "created_time") if k in data},
    }
    try:
        return LeadCreated.model_validate(fields)
    except ValidationError as exc:
        bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
        usable = {k: (None if k in bad and k in ("name", "phone", "email") else v) for k, v in fields.items()}
        try:
            return LeadCreated.model_validate(usable)  # keep the lead by what is valid; answers keep the rest
        except ValidationError:
            if is_test:
                return None
            raise ValueError(f"lead {ref.leadgen_id} has no usable phone or e-mail") from exc
