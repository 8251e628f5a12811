"""Console users: Argon2id password hashes, roles per tenant, and login throttling.

A user belongs to one tenant as `admin`, `seller` or `viewer`, or to none as `operator`
(sees every tenant). Wrong passwords are counted per e-mail typed, known or not, so
the lock (LOCK_AFTER failures -> LOCK_MINUTES) never tells who has an account.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared.db import Cursor, rows_as_dicts

Role = Literal["operator", "admin", "seller", "viewer"]
ROLES: tuple[Role, ...] = ("operator", "admin", "seller", "viewer")
WRITE_ROLES = frozenset({"operator", "admin", "seller"})  # may reply, take over, move stages, add notes
LOCK_AFTER = 10
LOCK_MINUTES = 15
MIN_PASSWORD = 10

_hasher = PasswordHasher()  # Argon2id with argon2-cffi's current (RFC 9106 low-memory) parameters
# Each hash or verify fills 64 MiB (the memory cost) outside the GIL: one at a time, or a burst of logins on the
# server's 8 threads would need 8 x 64 MiB in an instance of 256 MiB.
_one_hash_at_a_time = threading.Lock()


@cache
def _dummy_hash() -> str:
    """Verified when the e-mail is unknown, so a wrong e-mail costs the same time as a wrong password.

    Made on first use: hashing at import cost every process that imports this module 64 MiB and ~50 ms."""
    return _hash(secrets.token_urlsafe(16))


def _hash(password: str) -> str:
    with _one_hash_at_a_time:
        return _hasher.hash(password)


def _verify(stored: str, password: str) -> bool:
    with _one_hash_at_a_time:
        return _hasher.verify(stored, password)


class UserError(ValueError):
    """A user cannot be created or changed as asked; the message says why."""


@dataclass(frozen=True)
class User:
    id: str
    tenant_id: str | None
    email: str
    name: str
    role: Role
    active: bool

    @property
    def can_write(self) -> bool:
        return self.role in WRITE_ROLES

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


def _user(row: dict[str, Any]) -> User:
    return User(id=str(row["id"]), tenant_id=row["tenant_id"], email=row["email"], name=row["name"],
                role=row["role"], active=bool(row["active"]))


def normalize_email(email: str) -> str:
    return email.strip().lower()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password must have at least {MIN_PASSWORD} characters")
    return _hash(password)


def new_password() -> str:
    """A random password to hand to a person once (ctower users add/reset)."""
    return secrets.token_urlsafe(12)


def add_user(cur: Cursor, *, email: str, name: str, role: str, tenant: str | None, password: str) -> User:
    email = normalize_email(email)
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if (role == "operator") != (tenant is None):
        raise UserError("an operator has no tenant; every other role needs --tenant")
    if "@" not in email:
        raise UserError("email must be an e-mail address")
    if tenant is not None:
        cur.execute("SELECT 1 FROM tenants WHERE id = %s", (tenant,))
        if cur.fetchone() is None:
            raise UserError(f"no tenant {tenant!r}")
    cur.execute("SELECT 1 FROM console_users WHERE email = %s", (email,))
    if cur.fetchone() is not None:
        raise UserError(f"a user with e-mail {email} already exists")
    cur.execute("INSERT INTO console_users (tenant_id, email, name, role, password_hash) VALUES (%s, %s, %s, %s, %s) "
                "RETURNING id, tenant_id, email, name, role, active",
                (tenant, email, name.strip(), role, hash_password(password)))
    return _user(rows_as_dicts(cur)[0])


def list_users(cur: Cursor, tenant: str | None = None) -> list[User]:
    if tenant is None:
        cur.execute("SELECT id, tenant_id, email, name, role, active FROM console_users "
                    "ORDER BY tenant_id NULLS FIRST, email")
    else:
        cur.execute("SELECT id, tenant_id, email, name, role, active FROM console_users WHERE tenant_id = %s "
                    "ORDER BY email", (tenant,))
    return [_user(r) for r in rows_as_dicts(cur)]


def get_user(cur: Cursor, email: str) -> User | None:
    cur.execute("SELECT id, tenant_id, email, name, role, active FROM console_users WHERE email = %s",
                (normalize_email(email),))
    rows = rows_as_dicts(cur)
    return _user(rows[0]) if rows else None


def revoke_sessions(cur: Cursor, user_id: str) -> int:
    cur.execute("UPDATE console_sessions SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL",
                (user_id,))
    return int(cur.rowcount)


def disable_user(cur: Cursor, email: str) -> User:
    """Disable and sign out everywhere."""
    cur.execute("UPDATE console_users SET active = false, updated_at = now() WHERE email = %s "
                "RETURNING id, tenant_id, email, name, role, active",
                (normalize_email(email),))
    rows = rows_as_dicts(cur)
    if not rows:
        raise UserError(f"no user with e-mail {normalize_email(email)}")
    user = _user(rows[0])
    revoke_sessions(cur, user.id)
    return user


def reset_password(cur: Cursor, email: str, password: str) -> User:
    """A new password; re-enables the user, lifts a login lock and signs out every session."""
    email = normalize_email(email)
    cur.execute("UPDATE console_users SET password_hash = %s, active = true, updated_at = now() WHERE email = %s "
                "RETURNING id, tenant_id, email, name, role, active", (hash_password(password), email))
    rows = rows_as_dicts(cur)
    if not rows:
        raise UserError(f"no user with e-mail {email}")
    cur.execute("DELETE FROM console_login_failures WHERE email = %s", (email,))
    user = _user(rows[0])
    revoke_sessions(cur, user.id)
    return user


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    locked: bool = False


def authenticate(cur: Cursor, email: str, password: str) -> LoginResult:
    """The user when the password is right; counts failures and locks after LOCK_AFTER of them."""
    email = normalize_email(email)[:320]
    cur.execute("SELECT 1 FROM console_login_failures WHERE email = %s AND locked_until > now() FOR UPDATE", (email,))
    if cur.fetchone() is not None:
        return LoginResult(None, locked=True)
    cur.execute("SELECT id, tenant_id, email, name, role, active, password_hash FROM console_users "
                "WHERE email = %s", (email,))
    rows = rows_as_dicts(cur)
    stored = rows[0]["password_hash"] if rows else _dummy_hash()
    try:
        ok = _verify(stored, password) and bool(rows) and bool(rows[0]["active"])
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        cur.execute(
            "INSERT INTO console_login_failures (email, failures) VALUES (%s, 1) ON CONFLICT (email) DO UPDATE SET "
            "failures = CASE WHEN console_login_failures.locked_until IS NOT NULL THEN 1 "
            "ELSE console_login_failures.failures + 1 END, locked_until = NULL, updated_at = now() "
            "RETURNING failures", (email,))
        failures = int(cur.fetchone()[0])
        if failures >= LOCK_AFTER:
            cur.execute("UPDATE console_login_failures SET locked_until = now() + make_interval(mins => %s) "
                        "WHERE email = %s", (LOCK_MINUTES, email))
            return LoginResult(None, locked=True)
        return LoginResult(None)
    cur.execute("DELETE FROM console_login_failures WHERE email = %s", (email,))
    if _hasher.check_needs_rehash(stored):
        cur.execute("UPDATE console_users SET password_hash = %s WHERE email = %s", (_hash(password), email))
    return LoginResult(_user(rows[0]))
