"""The structured output asked of the model, built from the tenant's settings.

Each niche defines its own lead facts and intents (settings.json), so the pydantic
model is made per tenant; `ctower assistant schema --tenant T` prints its JSON schema.
Every field is required and nullable, as OpenAI's strict structured outputs want.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from shared.assistant.config import AssistantSettings, FactSpec

MAX_REPLY_CHARS = 1500


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class ModelAnswer:
    """What the rest of the assistant uses, whatever the tenant's schema looks like."""

    reply: str
    facts: dict[str, Any]
    intent: str
    handoff: bool


def _fact_field(spec: FactSpec) -> tuple[Any, Any]:
    kind: Any = float if spec.type == "number" else str
    return (kind | None, Field(description=spec.description or None))


def output_model(settings: AssistantSettings) -> type[BaseModel]:
    # Cached by the settings that shape it: an edited settings.json gets a new model, an unchanged one is reused.
    return _output_model(settings.model_dump_json(include={"lead_facts", "intents"}))


@lru_cache(maxsize=32)
def _output_model(key: str) -> type[BaseModel]:
    raw = json.loads(key)
    facts_model: Any = create_model(  # type: ignore[call-overload]
        "LeadFacts", __base__=_Strict,
        **{name: _fact_field(FactSpec.model_validate(spec)) for name, spec in raw["lead_facts"].items()},
    )
    intent: Any = Literal[tuple(raw["intents"])]
    model: type[BaseModel] = create_model(
        "AssistantOutput", __base__=_Strict,
        reply=(str, Field(description="A mensagem a enviar ao lead, em português do Brasil")),
        lead_facts=(facts_model, Field(description="Fatos que o lead informou; null quando não informou")),
        intent=(intent, Field(description="A intenção principal da última mensagem do lead")),
        handoff=(bool, Field(description="true quando uma pessoa da empresa deve assumir a conversa")),
    )
    return model


def to_answer(parsed: BaseModel) -> ModelAnswer:
    data = parsed.model_dump()
    facts = {k: v for k, v in (data.get("lead_facts") or {}).items() if v not in (None, "")}
    return ModelAnswer(reply=str(data["reply"]).strip(), facts=facts, intent=str(data["intent"]),
                       handoff=bool(data["handoff"]))


def json_schema(settings: AssistantSettings) -> dict[str, Any]:
    return output_model(settings).model_json_schema()
