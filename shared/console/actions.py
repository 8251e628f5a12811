"""What a person does in the console, as events on the same topics as everything else.

Each action builds a typed payload, publishes its envelope and waits for Pub/Sub's
confirmation; the writers apply it (ledger, retries, dead letters and trace as for any
event). The event id comes from the form's one-time key, so a double-submitted form is
one event. Who asked is kept in `console_actions`, by event id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from shared.console.users import User
from shared.db import Database
from shared.envelope import Envelope, build_envelope
from shared.log import get_logger
from shared.payloads import E164_CONTEXT, HandoffRequested, NoteAdded, Payload, ReplyRequested, StageChanged
from shared.publisher import EnvelopePublisher

log = get_logger(__name__)
SOURCE = "console"


@dataclass(frozen=True)
class Published:
    event_id: str
    correlation_id: str


def _publish(db: Database, publisher: EnvelopePublisher, user: User, tenant: str, lead_id: str, event_type: str,
             payload: Payload, form_key: str, correlation_id: str | None) -> Published:
    envelope: Envelope = build_envelope(
        event_type=event_type, payload=payload, tenant=tenant, source=SOURCE,
        correlation_id=correlation_id or str(uuid.uuid4()), source_id=f"{user.id}:{form_key}")
    publisher.publish(envelope)
    with db.transaction() as cur:
        cur.execute("INSERT INTO console_actions (event_id, tenant_id, user_id, event_type, lead_id, correlation_id) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING",
                    (envelope.event_id, tenant, user.id, event_type, lead_id, envelope.correlation_id))
    log.info("console published %s", event_type, extra={"event_id": envelope.event_id, "user_id": user.id})
    return Published(envelope.event_id, envelope.correlation_id)


def reply(db: Database, publisher: EnvelopePublisher, user: User, tenant: str, lead: dict[str, Any], text: str,
          in_reply_to: str | None, form_key: str, correlation_id: str | None = None) -> Published:
    # The lead's phone is stored as E.164 digits: read it as such, not as a national number.
    payload = ReplyRequested.model_validate(
        {"conversation_id": lead["conversation_id"], "lead_id": lead["id"], "provider": lead["conversation_provider"],
         "phone": lead["phone"], "chat_id": lead["chat_id"], "text": text, "kind": "human",
         "in_reply_to": in_reply_to or "console", "sent_by_user": user.id}, context=E164_CONTEXT)
    return _publish(db, publisher, user, tenant, str(lead["id"]), "reply_requested", payload, form_key, correlation_id)


def handoff(db: Database, publisher: EnvelopePublisher, user: User, tenant: str, lead: dict[str, Any], to: str,
            form_key: str, correlation_id: str | None = None) -> Published:
    payload = HandoffRequested.model_validate({"conversation_id": lead["conversation_id"], "lead_id": lead["id"],
                                               "to": to, "actor": user.email})
    return _publish(db, publisher, user, tenant, str(lead["id"]), "handoff_requested", payload, form_key,
                    correlation_id)


def move_stage(db: Database, publisher: EnvelopePublisher, user: User, tenant: str, lead: dict[str, Any],
               to_stage: str, reason: str | None, form_key: str, correlation_id: str | None = None) -> Published:
    payload = StageChanged(lead_id=lead["id"], from_stage=lead["stage"], to_stage=to_stage,
                           reason=reason or f"movido por {user.name} no console")
    return _publish(db, publisher, user, tenant, str(lead["id"]), "stage_changed", payload, form_key, correlation_id)


def add_note(db: Database, publisher: EnvelopePublisher, user: User, tenant: str, lead: dict[str, Any], body: str,
             form_key: str, correlation_id: str | None = None) -> Published:
    payload = NoteAdded(lead_id=lead["id"], body=body, author=user.name, author_id=UUID(user.id))
    return _publish(db, publisher, user, tenant, str(lead["id"]), "note_added", payload, form_key, correlation_id)
