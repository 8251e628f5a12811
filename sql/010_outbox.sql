-- Talking back (issue 14): the outbox of replies and the delivery statuses providers report.
--
-- `outbound_messages` has one row per reply_requested event, written and committed BEFORE
-- the provider is called, so a retry after an unknown outcome (the provider accepted, the
-- commit after it failed) knows a send may already have happened and reconciles instead of
-- sending the same text again. The same row then follows the message's delivery status.

CREATE TABLE outbound_messages (
    tenant_id            text NOT NULL REFERENCES tenants(id),
    reply_event_id       text NOT NULL,          -- the reply_requested event
    conversation_id      uuid NOT NULL REFERENCES conversations(id),
    lead_id              uuid NOT NULL REFERENCES leads(id),
    provider             text NOT NULL,
    phone                text NOT NULL,
    body                 text NOT NULL,
    kind                 text NOT NULL,
    callback_ref         text NOT NULL,          -- sent where the provider echoes it (Cloud API biz_opaque_callback_data)
    status               text NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'delivered', 'read', 'failed')),
    attempts             integer NOT NULL DEFAULT 0,
    provider_message_id  text,
    last_error           text,                   -- why the last send attempt did not go out
    failure_reason       text,                   -- the provider's reason, for status `failed`
    send_started_at      timestamptz,            -- the provider call of the current attempt began
    sent_at              timestamptz,
    delivered_at         timestamptz,
    read_at              timestamptz,
    failed_at            timestamptz,
    reconciled           text,                   -- how a send with an unknown outcome was confirmed
    correlation_id       text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, reply_event_id)
);
CREATE UNIQUE INDEX outbound_messages_provider_id_key ON outbound_messages (tenant_id, provider, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
CREATE UNIQUE INDEX outbound_messages_callback_ref_key ON outbound_messages (callback_ref);
CREATE INDEX outbound_messages_conversation_idx ON outbound_messages (conversation_id, created_at);
CREATE INDEX outbound_messages_correlation_id_idx ON outbound_messages (correlation_id);

-- Every status callback, applied or not (a late `delivered` after `read` is kept, applied = false).
-- A status may arrive before the reply's row knows its provider id (the crash window): it is
-- kept here and applied when the id is recorded.
CREATE TABLE message_statuses (
    id                   bigserial PRIMARY KEY,
    tenant_id            text NOT NULL REFERENCES tenants(id),
    provider             text NOT NULL,
    provider_message_id  text NOT NULL,
    status               text NOT NULL CHECK (status IN ('sent', 'delivered', 'read', 'failed')),
    reason               text,
    callback_ref         text,
    recipient            text,                   -- digits of the lead's number, where the provider says
    occurred_at          timestamptz NOT NULL,
    applied              boolean NOT NULL DEFAULT false,
    event_id             text NOT NULL UNIQUE,
    correlation_id       text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX message_statuses_message_idx ON message_statuses (tenant_id, provider, provider_message_id);
CREATE INDEX message_statuses_recipient_idx ON message_statuses (tenant_id, provider, recipient, created_at);
CREATE INDEX message_statuses_callback_ref_idx ON message_statuses (callback_ref) WHERE callback_ref IS NOT NULL;
CREATE INDEX message_statuses_correlation_id_idx ON message_statuses (correlation_id);
