"""The language-model port and its OpenAI adapter (the official client).

The client is created on first use, once per instance, with OPENAI_BASE_URL (any
OpenAI-compatible endpoint; tests start a local stand-in) and the key from the
secret store. The client's own retries are off: Pub/Sub retries the whole turn, and
the tenant's timeout bounds how long a lead waits before the fallback goes out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ValidationError

from shared.assistant.config import AssistantSettings
from shared.assistant.schema import ModelAnswer, to_answer
from shared.instance import PerInstance

if TYPE_CHECKING:
    from openai import OpenAI

# The secret's NAME when no key is in the environment (Secret Manager in the cloud).
DEFAULT_KEY_SECRET = "openai-api-key"  # noqa: S105


class ModelUnavailable(RuntimeError):
    """The model did not give a usable answer (down, slow, refused, malformed); the turn is retried."""


@dataclass(frozen=True)
class Completion:
    answer: ModelAnswer
    tokens: int


class LanguageModel(Protocol):
    def complete(self, messages: list[dict[str, str]], output: type[BaseModel],
                 settings: AssistantSettings) -> Completion: ...


def _api_key() -> str:
    """OPENAI_API_KEY (locally, or a secret mounted as that variable); else the secret
    named by OPENAI_API_KEY_SECRET (default `openai-api-key`) through shared.secrets."""
    mounted = os.environ.get("OPENAI_API_KEY")
    if mounted:
        return mounted
    from shared.secrets import get_store

    return get_store().get(os.environ.get("OPENAI_API_KEY_SECRET") or DEFAULT_KEY_SECRET)


class OpenAIModel:
    def __init__(self, base_url: str | None = None) -> None:
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        self._client = PerInstance(self._make_client)

    def _make_client(self) -> OpenAI:
        from openai import OpenAI

        return OpenAI(api_key=_api_key(), base_url=self.base_url, max_retries=0)

    @property
    def client(self) -> OpenAI:
        return self._client.get()

    def complete(self, messages: list[dict[str, str]], output: type[BaseModel],
                 settings: AssistantSettings) -> Completion:
        import openai

        from shared.secrets import SecretUnavailable

        try:
            completion: Any = self.client.chat.completions.parse(
                model=settings.model, messages=messages,  # type: ignore[arg-type]
                response_format=output, temperature=settings.temperature,
                max_completion_tokens=settings.max_tokens, timeout=settings.timeout_seconds,
            )
        except (openai.OpenAIError, SecretUnavailable, ValidationError, ValueError) as exc:
            raise ModelUnavailable(f"{type(exc).__name__}: {str(exc)[:300]}") from exc
        message = completion.choices[0].message
        if message.parsed is None:
            raise ModelUnavailable(f"no structured answer (refusal: {message.refusal!r})")
        tokens = int(completion.usage.total_tokens) if completion.usage else 0
        return Completion(answer=to_answer(message.parsed), tokens=tokens)


_model = PerInstance(OpenAIModel)


def get_model() -> OpenAIModel:
    """The instance's model adapter; the OpenAI client itself is made on the first call."""
    return _model.get()
