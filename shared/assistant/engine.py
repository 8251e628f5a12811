"""One assistant decision, with no database and no Pub/Sub: shared by the subscriber and the simulator.

Given the tenant's configuration, the conversation so far and the facts already known,
decide: hand off (the lead asked for a person), stop (budget spent), or answer (the
model's reply after the guardrails). A model failure raises ModelUnavailable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from shared.assistant.catalog import Product
from shared.assistant.config import TenantAssistant
from shared.assistant.context import pending_lead_texts
from shared.assistant.guardrails import safe_reply
from shared.assistant.handoff import asks_for_person
from shared.assistant.llm import LanguageModel
from shared.assistant.prompt import Turn, build_messages, catalog_text
from shared.assistant.schema import ModelAnswer, output_model


@dataclass(frozen=True)
class Decision:
    kind: Literal["answer", "handoff", "over_budget"]
    reply: str | None
    answer: ModelAnswer | None = None
    tokens: int = 0
    guard_note: str | None = None
    products: tuple[Product, ...] = ()  # the catalog products the model was shown

    @property
    def hands_off(self) -> bool:
        return self.kind == "handoff" or bool(self.answer and self.answer.handoff)


def decide(config: TenantAssistant, history: list[Turn], known_facts: dict[str, Any], model: LanguageModel,
           reserve_call: Callable[[], bool], waited: timedelta | None = None,
           products: Sequence[Product] = ()) -> Decision:
    if asks_for_person(pending_lead_texts(history), config.settings.handoff_phrases):
        return Decision("handoff", config.handoff)
    if not reserve_call():
        return Decision("over_budget", config.fallback)
    completion = model.complete(build_messages(config, history, known_facts, waited, products),
                                output_model(config.settings), config.settings)
    reply, note = safe_reply(completion.answer.reply, config, catalog_text(products))
    return Decision("answer", reply, completion.answer, completion.tokens, note, tuple(products))
