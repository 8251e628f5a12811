"""One simulated turn of the assistant: the production decision, with nothing written, sent or counted.

`ctower assistant simulate` (a terminal loop) and the console's settings page both run it, so
the two simulators cannot drift apart from each other or from `engine.decide`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.assistant.catalog import Product
from shared.assistant.config import TenantAssistant
from shared.assistant.engine import decide
from shared.assistant.llm import LanguageModel, ModelUnavailable
from shared.assistant.prompt import Turn


@dataclass
class Simulated:
    """The conversation after the turn, the facts known, and what an operator should notice (pt-BR notes)."""

    turns: list[Turn]
    known: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    products: tuple[Product, ...] = ()  # the catalog products the model was shown
    hands_off: bool = False
    unavailable: str | None = None  # the model's failure in full, for an operator's terminal


def simulate(config: TenantAssistant, turns: list[Turn], known: dict[str, Any], text: str,
             model: LanguageModel, products: Sequence[Product] = ()) -> Simulated:
    """One lead message -> the assistant's answer, as production would decide it (budget not counted)."""
    turns = [*turns, Turn("lead", text)]
    known = dict(known)
    try:
        decision = decide(config, turns, known, model, reserve_call=lambda: True, products=products)
    except ModelUnavailable as exc:
        return Simulated([*turns, Turn("business", config.fallback)], known,
                         [f"modelo indisponível ({type(exc).__name__}): resposta de fallback"], unavailable=str(exc))
    turns.append(Turn("business", decision.reply or ""))
    notes: list[str] = []
    if decision.answer:
        for name, value in decision.answer.facts.items():
            if value not in (None, ""):
                known.setdefault(name, value)
        notes.append(f"intenção: {decision.answer.intent}")
    if decision.guard_note:
        notes.append(f"guardrail: {decision.guard_note}")
    if decision.hands_off:
        notes.append("handoff: a conversa passaria para uma pessoa")
    return Simulated(turns, known, notes, decision.products, decision.hands_off)
