"""`ctower catalog import` and the assistant's product search, against a real Postgres."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared.assistant.catalog import search_db
from shared.assistant.llm import OpenAIModel
from shared.db import Database
from shared.instance import PerInstance
from tests.conftest import ROOT, new_tenant, query

pytestmark = pytest.mark.integration

LINES = [("Piso Vinílico Click {n}", "piso vinílico", "Régua vinílica para sala e quarto, instalação sem cola"),
         ("Piso Laminado Carvalho {n}", "piso laminado", "Laminado para sala e quarto"),
         ("Porcelanato Acetinado {n}", "porcelanato", "Porcelanato 60x60 para áreas internas"),
         ("Rodapé de Poliestireno {n}", "rodapé", "Rodapé branco 7 cm"),
         ("Manta Acústica {n}", "acessório", "Manta para piso laminado e vinílico")]


def catalog_csv(rows: int) -> str:
    lines = ["sku;name;price;unit;category;description"]
    for n in range(rows):
        name, category, description = LINES[n % len(LINES)]
        lines.append(f"SKU-{n:04d};{name.format(n=n)};{50 + n % 300},{n % 100:02d};m²;{category};{description}")
    return "\n".join(lines) + "\n"


def ctower(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ops.cli", "catalog", *args, "--database-url", database_url,
                           "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.fixture
def tenant(database: Database) -> str:
    return new_tenant(database, "Catálogo", "cat")


def test_a_thousand_row_catalog_imports_and_the_vinyl_floors_match_the_leads_words(
        database: Database, database_url: str, tenant: str, tmp_path: Path) -> None:
    path = tmp_path / "products.csv"
    path.write_text(catalog_csv(1000), encoding="utf-8")
    started = time.monotonic()
    done = ctower(database_url, "import", "--tenant", tenant, str(path))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"tenant": tenant, "imported": 1000}
    assert time.monotonic() - started < 60
    assert query(database, "SELECT count(*) AS n FROM products WHERE tenant_id = %s", tenant) == [{"n": 1000}]

    found = search_db(database, tenant, ["piso vinílico para sala de 40m²"], 5)
    assert len(found) == 5 and all("Vinílico" in p.name for p in found)
    assert search_db(database, tenant, ["porcelanato"], 3)[0].name.startswith("Porcelanato")
    assert search_db(database, tenant, ["bom dia"], 5) == []
    assert search_db(database, "default", ["piso vinílico"], 5) == []  # another tenant's catalog stays its own
    shown = ctower(database_url, "search", "--tenant", tenant, "vinilico sala")
    assert shown.returncode == 0 and "Vinílico" in json.loads(shown.stdout)[0]["name"]


def test_a_file_with_bad_rows_reports_each_by_line_and_imports_nothing(
        database: Database, database_url: str, tenant: str, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(catalog_csv(10), encoding="utf-8")
    assert ctower(database_url, "import", "--tenant", tenant, str(good)).returncode == 0
    bad = tmp_path / "bad.csv"
    lines = catalog_csv(20).splitlines()
    lines[5] = "SKU-X;Piso sem preço;;m²;piso;"
    lines[12] = "SKU-0001;Duplicado;10,00;m²;piso;"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    refused = ctower(database_url, "import", "--tenant", tenant, str(bad))
    assert refused.returncode == 1
    assert json.loads(refused.stdout) == {"imported": 0, "errors": [
        {"line": 6, "error": "price is empty"}, {"line": 13, "error": "sku 'SKU-0001' already on line 3"}]}
    assert query(database, "SELECT count(*) AS n FROM products WHERE tenant_id = %s", tenant) == [{"n": 10}]
    unknown = ctower(database_url, "import", "--tenant", "nobody-here", str(good))
    assert unknown.returncode == 2 and "no tenant" in unknown.stderr


def test_the_simulator_shows_which_catalog_products_it_used(
        database: Database, database_url: str, tenant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from ops.commands_assistant import assistant
    from shared.assistant.config import load_tenant
    from tests.standins import OpenAIStandIn

    path = tmp_path / "products.csv"
    path.write_text(catalog_csv(50), encoding="utf-8")
    assert ctower(database_url, "import", "--tenant", tenant, str(path)).returncode == 0
    facts = dict.fromkeys(load_tenant("default").settings.lead_facts)
    model = OpenAIStandIn(lambda messages: {"reply": "Temos sim!", "lead_facts": facts, "intent": "orcamento",
                                            "handoff": False})
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", f"{model.url}/v1")
    monkeypatch.setattr("shared.assistant.llm._model", PerInstance(OpenAIModel))  # made with the stand-in's URL
    try:
        result = CliRunner().invoke(assistant, ["simulate", "--tenant", tenant, "--database-url", database_url],
                                    input="tem porcelanato para a cozinha?\n")
    finally:
        model.close()
    assert result.exit_code == 0, result.output
    used = [line for line in result.output.splitlines() if line.startswith("- [SKU-")]
    assert len(used) == 5 and all("Porcelanato" in line and "R$" in line for line in used)
    assert "produtos do catálogo usados" in result.output
    (call,) = model.calls()
    assert used[0] in call.body["messages"][0]["content"]
