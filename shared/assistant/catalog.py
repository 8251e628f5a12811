"""The product catalog per tenant: validated CSV rows, the all-or-nothing import, and the search.

The assistant retrieves the few products that match what the lead wrote (Portuguese full
text over accent-folded words, best matches first) and puts them in its system prompt
with their prices; the money guardrail then allows exactly those amounts.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from shared.assistant.handoff import normalize
from shared.db import Cursor, Database

COLUMNS = ("sku", "name", "price", "unit", "category", "description")
REQUIRED = ("sku", "name", "price")
MAX_QUERY_WORDS = 24


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price: Decimal
    unit: str = "un"
    category: str | None = None
    description: str | None = None

    def line(self) -> str:
        """How the product reads in the prompt (and in the simulator)."""
        extra = " ".join(filter(None, [f"({self.category})" if self.category else None, self.description]))
        return f"- [{self.sku}] {self.name}: {brl(self.price)} por {self.unit}" + (f" — {extra}" if extra else "")


@dataclass(frozen=True)
class RowError:
    line: int  # the CSV line (the header is line 1)
    message: str


def brl(amount: Decimal) -> str:
    """R$ 1.234,56 — the way the lead reads money, and what the guardrail matches."""
    text = f"{amount:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")
    return f"R$ {text}"


def parse_price(raw: str) -> Decimal:
    """'1.234,56', '1234,56', '1234.56' or 'R$ 89,90' -> Decimal; ValueError otherwise."""
    text = raw.strip().removeprefix("R$").strip()
    if "," in text:
        text = text.replace(".", "").replace(",", ".")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"price {raw!r} is not a number (use 89,90 or 89.90)") from None
    if not value.is_finite() or value < 0 or value >= Decimal("1e10"):
        raise ValueError(f"price {raw!r} is out of range")
    return value.quantize(Decimal("0.01"))


def parse_csv(text: str) -> tuple[list[Product], list[RowError]]:
    """Every valid row, and every problem by line number; `;` or `,` separated (by the header), header required."""
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","  # Excel in pt-BR writes `;`
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader, [])]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown:
        return [], [RowError(1, f"header needs {', '.join(REQUIRED)} (optional: {', '.join(COLUMNS[3:])}); "
                                + (f"missing {missing}" if missing else f"unknown {unknown}"))]
    products: list[Product] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            errors.append(RowError(line, f"{len(values)} fields, the header has {len(header)}"))
            continue
        row = {k: v.strip() for k, v in zip(header, values, strict=True)}
        problems = [f"{c} is empty" for c in REQUIRED if not row[c]]
        if len(row["sku"]) > 100 or len(row["name"]) > 200:
            problems.append("sku (100) or name (200) too long")
        price = None
        if row["price"]:
            try:
                price = parse_price(row["price"])
            except ValueError as exc:
                problems.append(str(exc))
        if row["sku"] in seen:
            problems.append(f"sku {row['sku']!r} already on line {seen[row['sku']]}")
        if problems or price is None:
            errors.append(RowError(line, "; ".join(problems)))
            continue
        seen[row["sku"]] = line
        products.append(Product(row["sku"], row["name"], price, row.get("unit") or "un",
                                row.get("category") or None, row.get("description") or None))
    return products, errors


def replace_catalog(db: Database, tenant: str, products: list[Product]) -> int:
    """The tenant's catalog becomes exactly `products`, in one transaction (never half imported)."""
    with db.transaction() as cur:
        cur.execute("DELETE FROM products WHERE tenant_id = %s", (tenant,))
        for p in products:
            cur.execute("INSERT INTO products (tenant_id, sku, name, price, unit, category, description) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        (tenant, p.sku, p.name, p.price, p.unit, p.category, p.description))
    return len(products)


def query_words(texts: Iterable[str]) -> list[str]:
    words: list[str] = []
    for text in texts:
        for word in re.findall(r"[a-z]{3,}", normalize(text)):
            if word not in words:
                words.append(word)
    return words[-MAX_QUERY_WORDS:]


def search(cur: Cursor, tenant: str, texts: Iterable[str], limit: int) -> list[Product]:
    """The tenant's products that best match any of the words in `texts` (most relevant first)."""
    words = query_words(texts)
    if not words or limit <= 0:
        return []
    cur.execute("SELECT sku, name, price, unit, category, description FROM products, "
                "to_tsquery('portuguese', %s) AS q WHERE tenant_id = %s AND search @@ q "
                "ORDER BY ts_rank_cd(search, q) DESC, name LIMIT %s", (" | ".join(words), tenant, limit))
    return [Product(str(r[0]), str(r[1]), Decimal(r[2]), str(r[3]), r[4], r[5]) for r in cur.fetchall()]


def search_db(db: Database, tenant: str, texts: Iterable[str], limit: int) -> list[Product]:
    with db.transaction() as cur:
        return search(cur, tenant, texts, limit)
