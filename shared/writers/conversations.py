"""Conversations and messages: a message from an unknown phone creates its lead (ct_message_received)."""

from __future__ import annotations

import json

from shared.envelope import Envelope
from shared.payloads import MessageReceived
from shared.writers.calls import Call


def apply_message_received(envelope: Envelope, message: MessageReceived) -> Call:
    # The first ad a lead came from stays on the lead (an existing lead's extra keeps its own).
    lead_extra = {"referral": message.referral} if message.referral else None
    return Call("ct_message_received", (
        message.provider, message.provider_message_id, message.direction, message.phone, message.display_name,
        message.display_name if message.direction == "inbound" else None,
        json.dumps(lead_extra) if lead_extra is not None else None, message.chat_id, message.message_type,
        message.text, json.dumps(message.media) if message.media is not None else None,
        message.sent_at or envelope.occurred_at, message.raw_type,
        json.dumps(message.referral) if message.referral is not None else None, bool(message.status_reply)))
