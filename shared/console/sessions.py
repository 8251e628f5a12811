"""Console sessions in Postgres (revocable), their cookies, and CSRF tokens.

The cookie carries a random token; the table keeps only HMAC-SHA256(CONSOLE_SESSION_SECRET,
token), so neither a database read nor a leaked secret alone yields a live session.
Each session has its own CSRF token, which every form posts back. The login form,
before any session, uses a signed double-submit token instead.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

from shared.console.users import User, _user
from shared.db import Cursor, rows_as_dicts

SESSION_COOKIE = "ct_session"
LOGIN_COOKIE = "ct_login"
SESSION_HOURS = 12
IDLE_HOURS = 2


class ConsoleNotConfigured(RuntimeError):
    """CONSOLE_SESSION_SECRET is missing or too short; the console refuses to serve."""


def session_secret() -> bytes:
    secret = os.environ.get("CONSOLE_SESSION_SECRET", "")
    if len(secret) < 32:
        raise ConsoleNotConfigured("CONSOLE_SESSION_SECRET must be set (32+ characters)")
    return secret.encode("utf-8")


def cookie_secure() -> bool:
    """Secure cookies, unless CONSOLE_COOKIE_SECURE=false (plain-HTTP local stack only)."""
    return (os.environ.get("CONSOLE_COOKIE_SECURE") or "true").strip().lower() not in ("0", "false", "no", "off")


def keyed(token: str) -> str:
    return hmac.new(session_secret(), token.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Session:
    token_hash: str
    user: User
    tenant: str | None  # the tenant this session looks at: the user's own, or the one an operator chose
    csrf_token: str

    def csrf_ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf_token, given or "")


def create(cur: Cursor, user: User) -> tuple[str, Session]:
    """A new session; returns the cookie token (shown once) and the session."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    cur.execute("INSERT INTO console_sessions (token_hash, user_id, tenant_id, csrf_token, expires_at) "
                "VALUES (%s, %s, %s, %s, now() + make_interval(hours => %s))",
                (keyed(token), user.id, user.tenant_id, csrf, SESSION_HOURS))
    return token, Session(keyed(token), user, user.tenant_id, csrf)


def lookup(cur: Cursor, token: str | None) -> Session | None:
    """The live session for a cookie token (not revoked, expired or idle; its user active)."""
    if not token or len(token) > 200:
        return None
    token_hash = keyed(token)
    cur.execute(
        "UPDATE console_sessions s SET last_seen_at = now() FROM console_users u "
        "WHERE s.token_hash = %s AND u.id = s.user_id AND u.active AND s.revoked_at IS NULL "
        "AND s.expires_at > now() AND s.last_seen_at > now() - make_interval(hours => %s) "
        "RETURNING u.id, u.tenant_id, u.email, u.name, u.role, u.active, s.tenant_id AS session_tenant, s.csrf_token",
        (token_hash, IDLE_HOURS))
    rows = rows_as_dicts(cur)
    if not rows:
        return None
    row = rows[0]
    user = _user(row)
    tenant = user.tenant_id if not user.is_operator else row["session_tenant"]
    return Session(token_hash, user, tenant, row["csrf_token"])


def revoke(cur: Cursor, session: Session) -> None:
    cur.execute("UPDATE console_sessions SET revoked_at = now() WHERE token_hash = %s", (session.token_hash,))


def choose_tenant(cur: Cursor, session: Session, tenant: str) -> bool:
    """An operator looks at `tenant` from now on; False when it does not exist or the user is no operator."""
    if not session.user.is_operator:
        return False
    cur.execute("SELECT 1 FROM tenants WHERE id = %s", (tenant,))
    if cur.fetchone() is None:
        return False
    cur.execute("UPDATE console_sessions SET tenant_id = %s WHERE token_hash = %s", (tenant, session.token_hash))
    return True


def login_token() -> str:
    """A signed nonce for the login form: the same value goes in a cookie and a hidden field."""
    nonce = secrets.token_urlsafe(24)
    return f"{nonce}.{keyed('login:' + nonce)}"


def login_token_ok(cookie: str | None, field: str | None) -> bool:
    if not cookie or not field or not hmac.compare_digest(cookie, field):
        return False
    nonce, _, signature = cookie.partition(".")
    return hmac.compare_digest(signature, keyed("login:" + nonce))


def cookie_header(name: str, value: str, *, max_age: int, path: str = "/") -> str:
    """Set-Cookie: HttpOnly, SameSite=Lax (links from WhatsApp still open the console), Secure."""
    parts = [f"{name}={value}", f"Path={path}", f"Max-Age={max_age}", "HttpOnly", "SameSite=Lax"]
    if cookie_secure():
        parts.append("Secure")
    return "; ".join(parts)
