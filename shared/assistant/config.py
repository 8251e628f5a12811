"""Per-tenant assistant configuration: files an operator can read and change.

`shared/assistant/tenants/<tenant>/` holds prompt.md, facts.md, settings.json,
fallback.txt and handoff.txt; a tenant without a folder uses `default`'s. The folder
ships inside `shared/`, so the deploy archive carries it; ASSISTANT_TENANTS_DIR points
elsewhere (tests, or an operator trying changes with the simulator).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.senders.config import SenderSettings

DEFAULT_TENANTS_DIR = Path(__file__).with_name("tenants")
DEFAULT_TENANT = "default"


class FactSpec(BaseModel):
    """One lead fact the tenant's niche cares about; `column` names the leads column it fills."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["string", "number"] = "string"
    description: str = ""
    column: Literal["name", "location", "project_type"] | None = None


class QualificationRule(BaseModel):
    """When every fact in `when_facts` is known, the lead moves (forward only) to `stage`."""

    model_config = ConfigDict(extra="forbid")
    stage: str
    when_facts: list[str] = Field(min_length=1)


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid")
    calls: int = Field(default=2000, ge=0)
    tokens: int = Field(default=1_500_000, ge=0)


class AssistantSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    model: str = "gpt-4o-mini"
    temperature: float = Field(default=0.3, ge=0, le=2)
    max_tokens: int = Field(default=400, gt=0)
    timeout_seconds: float = Field(default=20, gt=0)
    history_messages: int = Field(default=20, gt=0, le=200)
    catalog_products: int = Field(default=5, ge=0, le=20)  # products of the catalog shown per turn (0: none)
    daily_budget: Budget = Field(default_factory=Budget)
    lead_facts: dict[str, FactSpec] = Field(default_factory=dict)
    intents: list[str] = Field(default_factory=lambda: ["outro"], min_length=1)
    qualification: list[QualificationRule] = Field(default_factory=list)
    handoff_phrases: list[str] = Field(default_factory=list)
    unsupported_amount_reply: str = Field(min_length=1)
    senders: SenderSettings = Field(default_factory=SenderSettings)


@dataclass(frozen=True)
class TenantAssistant:
    tenant: str
    folder: Path
    prompt: str
    facts: str
    fallback: str
    handoff: str
    settings: AssistantSettings


def tenants_dir() -> Path:
    return Path(os.environ.get("ASSISTANT_TENANTS_DIR") or DEFAULT_TENANTS_DIR)


def _read(folder: Path, name: str) -> str:
    text = (folder / name).read_text(encoding="utf-8").strip()
    if not text:
        raise ValueError(f"{folder / name} is empty")
    return text


def load_tenant(tenant: str, base: Path | None = None) -> TenantAssistant:
    """Read the tenant's files now (raises with the file name when one is missing or invalid)."""
    base = base or tenants_dir()
    folder = base / tenant
    if not folder.is_dir():
        folder = base / DEFAULT_TENANT
    raw: Any = json.loads(_read(folder, "settings.json"))
    return TenantAssistant(
        tenant=tenant, folder=folder, prompt=_read(folder, "prompt.md"), facts=_read(folder, "facts.md"),
        fallback=_read(folder, "fallback.txt"), handoff=_read(folder, "handoff.txt"),
        settings=AssistantSettings.model_validate(raw),
    )


@lru_cache(maxsize=64)
def _cached(tenant: str, base: str, stamp: tuple[float, ...]) -> TenantAssistant:
    return load_tenant(tenant, Path(base))


def get_tenant(tenant: str) -> TenantAssistant:
    """The tenant's configuration, re-read when one of its files changed (cheap stat per call)."""
    base = tenants_dir()
    folder = base / tenant if (base / tenant).is_dir() else base / DEFAULT_TENANT
    stamp = tuple(p.stat().st_mtime for p in sorted(folder.glob("*")) if p.is_file())
    return _cached(tenant, str(base), stamp)
