-- The assistant (issue 6): its own idempotency record per inbound message, handoffs
-- between the assistant and people, the daily budget per tenant, and who sent an
-- outbound message.
--
-- The assistant is a second subscriber of message_received; the `events` ledger is
-- keyed by event_id and belongs to the conversations writer, so the assistant keeps
-- its own record here, keyed by the inbound event id.

CREATE TABLE assistant_turns (
    tenant_id         text NOT NULL REFERENCES tenants(id),
    inbound_event_id  text NOT NULL,
    conversation_id   uuid REFERENCES conversations(id),
    lead_id           uuid REFERENCES leads(id),
    status            text NOT NULL CHECK (status IN ('pending', 'answered', 'superseded', 'skipped', 'handoff',
                                                      'over_budget')),
    detail            text,                 -- why skipped, the intent answered, ...
    fallback_sent_at  timestamptz,          -- the fallback went out once for this message
    reply_event_id    text,                 -- the reply_requested event of the real answer
    attempts          integer NOT NULL DEFAULT 0,
    last_error        text,
    tokens            integer NOT NULL DEFAULT 0,
    correlation_id    text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, inbound_event_id)
);
CREATE INDEX assistant_turns_correlation_id_idx ON assistant_turns (correlation_id);
CREATE INDEX assistant_turns_conversation_idx ON assistant_turns (conversation_id, created_at);

-- Every switch of a conversation between the assistant and people.
CREATE TABLE handoffs (
    id               bigserial PRIMARY KEY,
    tenant_id        text NOT NULL REFERENCES tenants(id),
    conversation_id  uuid NOT NULL REFERENCES conversations(id),
    lead_id          uuid NOT NULL REFERENCES leads(id),
    handled_by       text NOT NULL CHECK (handled_by IN ('assistant', 'human')),  -- who has it after the switch
    reason           text NOT NULL CHECK (reason IN ('lead_asked', 'model', 'seller_message', 'operator')),
    detail           text,
    event_id         text,          -- the message that caused it (none for an operator's handback)
    actor            text,          -- the operator, for a handback
    correlation_id   text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX handoffs_event_key ON handoffs (tenant_id, event_id, handled_by) WHERE event_id IS NOT NULL;
CREATE INDEX handoffs_conversation_idx ON handoffs (conversation_id, created_at);
CREATE INDEX handoffs_correlation_id_idx ON handoffs (correlation_id);

-- Calls and tokens spent per tenant and day, checked before every model call.
CREATE TABLE assistant_usage (
    tenant_id  text NOT NULL REFERENCES tenants(id),
    day        date NOT NULL,
    calls      integer NOT NULL DEFAULT 0,
    tokens     integer NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day)
);

-- Who wrote an outbound message: the assistant (reply_sender) or a person (anything else).
ALTER TABLE messages ADD COLUMN sent_by text CHECK (sent_by IN ('lead', 'assistant', 'human'));
