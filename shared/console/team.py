"""An admin's team: invitations by one-time link, role changes, disabling and enabling.

Messages are in Portuguese: this module serves the console's pages (ctower users has its own).

Every statement names the admin's tenant, so a user id from another tenant changes
nothing (the caller answers 404). An admin cannot demote or disable themselves, so a
tenant never loses its last way in by accident.
"""

from __future__ import annotations

import secrets
from typing import Any

from shared.console.sessions import keyed
from shared.console.users import ROLES, User, UserError, add_user, normalize_email, revoke_sessions
from shared.db import Cursor, rows_as_dicts

INVITE_HOURS = 72
TEAM_ROLES = tuple(r for r in ROLES if r != "operator")


def members(cur: Cursor, tenant: str) -> list[dict[str, Any]]:
    cur.execute("SELECT id, email, name, role, active, created_at FROM console_users WHERE tenant_id = %s "
                "ORDER BY active DESC, name", (tenant,))
    return rows_as_dicts(cur)


def pending_invites(cur: Cursor, tenant: str) -> list[dict[str, Any]]:
    cur.execute("SELECT email, name, role, created_at, expires_at FROM console_invites WHERE tenant_id = %s "
                "AND used_at IS NULL AND expires_at > now() ORDER BY created_at DESC", (tenant,))
    return rows_as_dicts(cur)


def invite(cur: Cursor, *, tenant: str, email: str, name: str, role: str, invited_by: User) -> str:
    """A one-time token for the link (shown once; only its keyed hash is stored)."""
    email = normalize_email(email)
    if role not in TEAM_ROLES:
        raise UserError("perfil inválido")
    if "@" not in email or not name.strip():
        raise UserError("informe o e-mail e o nome da pessoa")
    cur.execute("SELECT 1 FROM console_users WHERE email = %s", (email,))
    if cur.fetchone() is not None:
        raise UserError(f"já existe um usuário com o e-mail {email}")
    token = secrets.token_urlsafe(32)
    cur.execute("INSERT INTO console_invites (token_hash, tenant_id, email, name, role, invited_by, expires_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, now() + make_interval(hours => %s))",
                (keyed("invite:" + token), tenant, email, name.strip(), role, invited_by.id, INVITE_HOURS))
    return token


def open_invite(cur: Cursor, token: str) -> dict[str, Any] | None:
    """The invitation behind a link, if it is still good (unused, unexpired)."""
    if not token or len(token) > 200:
        return None
    cur.execute("SELECT tenant_id, email, name, role FROM console_invites WHERE token_hash = %s "
                "AND used_at IS NULL AND expires_at > now() FOR UPDATE", (keyed("invite:" + token),))
    rows = rows_as_dicts(cur)
    return rows[0] if rows else None


def accept_invite(cur: Cursor, token: str, password: str) -> User:
    """Make the invited user with their own password; the link then no longer works."""
    found = open_invite(cur, token)
    if found is None:
        raise UserError("convite expirado ou já usado")
    user = add_user(cur, email=found["email"], name=found["name"], role=found["role"], tenant=found["tenant_id"],
                    password=password)
    cur.execute("UPDATE console_invites SET used_at = now() WHERE token_hash = %s", (keyed("invite:" + token),))
    return user


def set_role(cur: Cursor, *, tenant: str, user_id: str, role: str, by: User) -> bool:
    """False when the user is not in the tenant."""
    if role not in TEAM_ROLES:
        raise UserError("perfil inválido")
    if user_id == by.id:
        raise UserError("você não pode mudar o seu próprio perfil")
    cur.execute("UPDATE console_users SET role = %s, updated_at = now() WHERE id::text = %s AND tenant_id = %s",
                (role, user_id, tenant))
    return bool(cur.rowcount)


def set_active(cur: Cursor, *, tenant: str, user_id: str, active: bool, by: User) -> bool:
    """Disable (their sessions end at once) or enable; False when the user is not in the tenant."""
    if user_id == by.id:
        raise UserError("você não pode desativar a si mesmo")
    cur.execute("UPDATE console_users SET active = %s, updated_at = now() WHERE id::text = %s AND tenant_id = %s",
                (active, user_id, tenant))
    if not cur.rowcount:
        return False
    if not active:
        revoke_sessions(cur, user_id)
    return True
