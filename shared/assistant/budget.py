"""The per-tenant daily budget of model calls and tokens, kept in Postgres.

A call is reserved before it is made (atomically, so concurrent instances cannot
overspend) and its tokens are added after. Days are counted in Brazil's time.
"""

from __future__ import annotations

from shared.assistant.config import Budget
from shared.db import Database

_TODAY = "(now() AT TIME ZONE 'America/Sao_Paulo')::date"


def effective(budget: Budget, calls: int | None, tokens: int | None) -> Budget:
    """The tenant's settings.json budget, with tenant_limits' figures where an operator set them."""
    return Budget(calls=budget.calls if calls is None else calls, tokens=budget.tokens if tokens is None else tokens)


def reserve_call(db: Database, tenant: str, budget: Budget) -> bool:
    """Count one more call today; False (nothing counted) when the budget is spent."""
    if budget.calls <= 0 or budget.tokens <= 0:
        return False
    with db.transaction() as cur:
        cur.execute(f"INSERT INTO assistant_usage (tenant_id, day, calls) VALUES (%s, {_TODAY}, 1) "  # noqa: S608
                    "ON CONFLICT (tenant_id, day) DO UPDATE SET calls = assistant_usage.calls + 1 "
                    "WHERE assistant_usage.calls < %s AND assistant_usage.tokens < %s RETURNING calls",
                    (tenant, budget.calls, budget.tokens))
        return cur.fetchone() is not None


def release_call(db: Database, tenant: str) -> None:
    """Give back a reserved call the model never answered (an outage must not spend the day's budget)."""
    with db.transaction() as cur:
        cur.execute(f"UPDATE assistant_usage SET calls = GREATEST(calls - 1, 0) "  # noqa: S608
                    f"WHERE tenant_id = %s AND day = {_TODAY}", (tenant,))


def add_tokens(db: Database, tenant: str, tokens: int) -> None:
    if tokens <= 0:
        return
    with db.transaction() as cur:
        cur.execute(f"UPDATE assistant_usage SET tokens = tokens + %s WHERE tenant_id = %s AND day = {_TODAY}",  # noqa: S608
                    (tokens, tenant))
