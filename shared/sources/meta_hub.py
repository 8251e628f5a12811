"""Meta's webhook subscription handshake, shared by WhatsApp Cloud API and Lead Ads.

Meta verifies a callback URL with `GET ?hub.mode=subscribe&hub.verify_token=...&hub.challenge=...`
and expects the challenge echoed back as plain text when the token is ours.
"""

from __future__ import annotations

import re

from shared.inbound import EdgeError, Inbound, Reply
from shared.tenants import SourceSettings
from shared.verification import verify_token_matches

_CHALLENGE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


def handshake(inbound: Inbound, settings: SourceSettings | None) -> Reply:
    query = inbound.query
    if query.get("hub.mode") != "subscribe" or not query.get("hub.challenge"):
        raise EdgeError(400, "invalid_request", "a GET here is Meta's subscription handshake", [
            {"field": "hub.mode", "message": "must be subscribe, with hub.verify_token and hub.challenge"}])
    if settings is None or not settings.verify_token_secret:
        raise EdgeError(403, "forbidden", "no verify token is configured for this source")
    if not verify_token_matches(settings.verify_token_secret, query):
        raise EdgeError(403, "forbidden", "hub.verify_token does not match")
    challenge = query["hub.challenge"]
    if not _CHALLENGE.match(challenge):
        raise EdgeError(400, "invalid_request", "hub.challenge is not a plain token",
                        [{"field": "hub.challenge", "message": "letters, digits, '.', '_' or '-'"}])
    return Reply(200, challenge)
