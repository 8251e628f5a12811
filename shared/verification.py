"""Proof of origin, checked on the raw request bytes, in constant time.

Each check names a secret; its value comes from shared.secrets. A check that fails
with the cached value is tried once more with a freshly read one, so a secret rotated
in Secret Manager is honoured without a redeploy. Failures raise EdgeError(401) and
say which proof was missing or wrong, never what was expected. A secret that cannot
be read is our fault, not the caller's: 503, so the platform retries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from shared.inbound import EdgeError, RawRequest
from shared.secrets import SecretStore, SecretUnavailable, get_store

if TYPE_CHECKING:
    from shared.tenants import SourceSettings

TOKEN_HEADER = "X-Webhook-Token"  # noqa: S105 - a header name
JWT_LEEWAY_SECONDS = 60


def unauthorized(message: str) -> EdgeError:
    return EdgeError(401, "unauthorized", message)


def with_secret(name: str, check: Callable[[bytes], bool], store: SecretStore | None = None) -> bool:
    """Run `check(secret)`; if it fails, once more with the secret re-read (rotation)."""
    store = store or get_store()
    try:
        if check(store.get(name).encode("utf-8")):
            return True
        return check(store.get(name, refresh=True).encode("utf-8"))
    except SecretUnavailable as exc:
        raise EdgeError(503, "not_configured", "this source's secret is not available; retry later") from exc


def hmac_sha256(key: bytes, raw: bytes) -> bytes:
    return hmac.new(key, raw, hashlib.sha256).digest()


def _prefixed(value: str | None, prefix: str = "sha256=") -> str | None:
    if not value or not value.startswith(prefix):
        return None
    return value[len(prefix):].strip()


def require_hub_signature(secret: str, request: RawRequest, raw: bytes) -> None:
    """Meta: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, app secret>`."""
    given = _prefixed(request.headers.get("X-Hub-Signature-256"))
    if given is None:
        raise unauthorized("send X-Hub-Signature-256: sha256=<hex HMAC of the body>")
    given_bytes = given.lower().encode("ascii", "replace")
    if not with_secret(secret, lambda key: hmac.compare_digest(hmac_sha256(key, raw).hex().encode(), given_bytes)):
        raise unauthorized("X-Hub-Signature-256 does not match the body")


def require_typeform_signature(secret: str, request: RawRequest, raw: bytes) -> None:
    """Typeform: `Typeform-Signature: sha256=<base64 HMAC-SHA256 of the raw body>`."""
    given = _prefixed(request.headers.get("Typeform-Signature"))
    if given is None:
        raise unauthorized("send Typeform-Signature: sha256=<base64 HMAC of the body>")
    given_bytes = given.encode("ascii", "replace")
    if not with_secret(secret, lambda key: hmac.compare_digest(base64.b64encode(hmac_sha256(key, raw)),
                                                               given_bytes)):
        raise unauthorized("Typeform-Signature does not match the body")


def require_google_key(secret: str, raw: bytes) -> None:
    """Google Ads lead forms: the body's `google_key` equals the key set on the form."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        body = None
    given = body.get("google_key") if isinstance(body, dict) else None
    if not isinstance(given, str) or not given:
        raise unauthorized("the body has no google_key")
    given_bytes = given.encode("utf-8", "replace")  # a lone surrogate is a wrong key, not a 500
    if not with_secret(secret, lambda key: hmac.compare_digest(key, given_bytes)):
        raise unauthorized("google_key does not match this form's key")


def request_token(request: RawRequest) -> str | None:
    """A shared token from `X-Webhook-Token`, `Authorization: Bearer`, or `?token=` (for URL-only platforms)."""
    header = request.headers.get(TOKEN_HEADER)
    if header:
        return header.strip()
    scheme, _, value = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip() and value.count(".") != 2:  # three dots' worth is a JWT
        return value.strip()
    token = request.query.get("token") if request.query else None
    return token.strip() if token else None


def require_token(secret: str, request: RawRequest) -> None:
    """Providers that do not sign: the per-tenant token the platform is configured to send."""
    given = request_token(request)
    if not given:
        raise unauthorized(f"send the tenant's token ({TOKEN_HEADER} header, Bearer, or ?token=)")
    given_bytes = given.encode("utf-8", "replace")
    if not with_secret(secret, lambda key: hmac.compare_digest(key, given_bytes)):
        raise unauthorized("the token is not this tenant's token for this source")


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def jwt_hs256_valid(token: str, key: bytes, now: float | None = None) -> bool:
    """An HS256 JWT signed with `key`, not expired (Evolution signs `{iat, exp, app, action}`)."""
    parts = token.split(".")
    if len(parts) != 3:
        return False
    try:
        header = json.loads(_b64url(parts[0]))
        claims = json.loads(_b64url(parts[1]))
        signature = _b64url(parts[2])
    except (ValueError, binascii.Error, RecursionError):
        return False
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        return False
    expected = hmac_sha256(key, f"{parts[0]}.{parts[1]}".encode("ascii", "replace"))
    if not hmac.compare_digest(expected, signature):
        return False
    now = time.time() if now is None else now
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool) or exp + JWT_LEEWAY_SECONDS < now:
        return False
    return not (isinstance(iat, (int, float)) and iat - JWT_LEEWAY_SECONDS > now)


def require_jwt(secret: str, request: RawRequest) -> None:
    """Evolution's optional `Authorization: Bearer <JWT HS256 signed with the webhook's jwt_key>`."""
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or token.strip().count(".") != 2:
        raise unauthorized("send Authorization: Bearer <JWT signed with the jwt_key>")
    if not with_secret(secret, lambda key: jwt_hs256_valid(token.strip(), key)):
        raise unauthorized("the JWT is not signed with this tenant's key, or has expired")


def require_known_id(settings: SourceSettings | None, found: Iterable[str | None], field: str) -> None:
    """The platform's instance/app/number/page id must be one the tenant configured (when it configured any)."""
    allowed_set = set(settings.ids) if settings is not None else set()
    if not allowed_set:
        return
    seen = [f for f in found if f]
    if not seen or any(f not in allowed_set for f in seen):
        raise EdgeError(401, "unauthorized", f"{field} is not one of this tenant's", [
            {"field": field, "message": "not configured for this tenant"}])


def verify_token_matches(secret: str, query: Mapping[str, str]) -> bool:
    """Meta's subscription handshake: `hub.verify_token` equals the tenant's verify token."""
    given = (query.get("hub.verify_token") or "").encode("utf-8", "replace")
    return bool(given) and with_secret(secret, lambda key: hmac.compare_digest(key, given))
