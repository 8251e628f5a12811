"""Conversations and messages: a message from an unknown phone creates its lead."""

from __future__ import annotations

import json

from shared.db import Cursor
from shared.envelope import Envelope
from shared.payloads import MessageReceived
from shared.writers.leads import find_or_create_lead


def apply_message_received(cur: Cursor, envelope: Envelope, message: MessageReceived) -> None:
    name = message.display_name if message.direction == "inbound" else None
    # The first ad a lead came from stays on the lead (an existing lead's extra keeps its own).
    extra = {"referral": message.referral} if message.referral else None
    lead_id = find_or_create_lead(cur, envelope, phone=message.phone, name=name, source=message.provider,
                                  extra=extra)
    sent_at = message.sent_at or envelope.occurred_at
    cur.execute(
        "INSERT INTO conversations (tenant_id, lead_id, channel, provider, chat_id, correlation_id, last_message_at) "
        "VALUES (%s, %s, 'whatsapp', %s, %s, %s, %s) "
        "ON CONFLICT (tenant_id, lead_id, channel) DO UPDATE SET "
        "last_message_at = GREATEST(conversations.last_message_at, EXCLUDED.last_message_at), "
        "provider = EXCLUDED.provider, chat_id = EXCLUDED.chat_id RETURNING id",
        (envelope.tenant, str(lead_id), message.provider, message.chat_id, envelope.correlation_id, sent_at),
    )
    conversation_id = cur.fetchone()[0]
    cur.execute(
        "INSERT INTO messages (tenant_id, conversation_id, lead_id, provider, provider_message_id, direction, "
        "sender_phone, sender_name, message_type, body, media, sent_at, event_id, correlation_id, "
        "raw_type, referral, status_reply) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s::jsonb, %s) "
        "ON CONFLICT (tenant_id, provider, provider_message_id) DO NOTHING",
        (envelope.tenant, str(conversation_id), str(lead_id), message.provider, message.provider_message_id,
         message.direction, message.phone, message.display_name, message.message_type, message.text,
         json.dumps(message.media) if message.media is not None else None, sent_at, envelope.event_id,
         envelope.correlation_id, message.raw_type,
         json.dumps(message.referral) if message.referral is not None else None, bool(message.status_reply)),
    )
