-- Control Tower schema, first cut: tenants, the event ledger, leads, conversations,
-- pipeline history, proposals and obras. Every row written from an event carries the
-- correlation_id of the request that caused it.

CREATE TABLE tenants (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{1,62}$'),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tenants (id, name) VALUES ('default', 'Default tenant');

-- One row per event (status processed/failed/processing), plus one row per duplicate
-- delivery (status duplicate) so every correlation id stays traceable.
CREATE TABLE events (
    id              bigserial PRIMARY KEY,
    event_id        text NOT NULL,
    event_type      text NOT NULL,
    tenant_id       text NOT NULL REFERENCES tenants(id),
    source          text NOT NULL,
    correlation_id  text NOT NULL,
    message_id      text,
    status          text NOT NULL CHECK (status IN ('processing', 'processed', 'duplicate', 'failed')),
    attempts        integer NOT NULL DEFAULT 1,
    last_error      text,
    envelope        jsonb NOT NULL,
    occurred_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    processed_at    timestamptz
);
CREATE UNIQUE INDEX events_event_id_key ON events (event_id) WHERE status <> 'duplicate';
CREATE UNIQUE INDEX events_duplicate_delivery_key ON events (event_id, message_id) WHERE status = 'duplicate';
CREATE INDEX events_correlation_id_idx ON events (correlation_id);
CREATE INDEX events_failed_idx ON events (updated_at DESC) WHERE status = 'failed';
CREATE INDEX events_tenant_type_idx ON events (tenant_id, event_type, created_at DESC);

CREATE TABLE leads (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         text NOT NULL REFERENCES tenants(id),
    phone             text,
    email             text,
    name              text,
    source            text NOT NULL,
    funnel            text,
    location          text,
    project_type      text,
    stage             text NOT NULL DEFAULT 'novo',
    stage_changed_at  timestamptz NOT NULL DEFAULT now(),
    extra             jsonb NOT NULL DEFAULT '{}'::jsonb,
    correlation_id    text NOT NULL,  -- the request that created the lead
    last_correlation_id text NOT NULL,  -- the request that last changed it
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (phone IS NOT NULL OR email IS NOT NULL)
);
CREATE UNIQUE INDEX leads_tenant_phone_key ON leads (tenant_id, phone) WHERE phone IS NOT NULL;
CREATE INDEX leads_tenant_email_idx ON leads (tenant_id, lower(email)) WHERE email IS NOT NULL;
CREATE INDEX leads_correlation_id_idx ON leads (correlation_id);
CREATE INDEX leads_last_correlation_id_idx ON leads (last_correlation_id);

CREATE TABLE conversations (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id        text NOT NULL REFERENCES tenants(id),
    lead_id          uuid NOT NULL REFERENCES leads(id),
    channel          text NOT NULL DEFAULT 'whatsapp',
    provider         text NOT NULL,
    chat_id          text NOT NULL,
    handled_by       text NOT NULL DEFAULT 'assistant' CHECK (handled_by IN ('assistant', 'human')),
    correlation_id   text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_message_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, lead_id, channel)
);
CREATE INDEX conversations_correlation_id_idx ON conversations (correlation_id);

CREATE TABLE messages (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id            text NOT NULL REFERENCES tenants(id),
    conversation_id      uuid NOT NULL REFERENCES conversations(id),
    lead_id              uuid NOT NULL REFERENCES leads(id),
    provider             text NOT NULL,
    provider_message_id  text NOT NULL,
    direction            text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    sender_phone         text NOT NULL,
    sender_name          text,
    message_type         text NOT NULL,
    body                 text,
    media                jsonb,
    sent_at              timestamptz NOT NULL,
    event_id             text NOT NULL,
    correlation_id       text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, provider, provider_message_id)
);
CREATE INDEX messages_lead_idx ON messages (lead_id, sent_at);
CREATE INDEX messages_correlation_id_idx ON messages (correlation_id);

-- Every stage change asked for, applied or not (a stale one is kept with applied = false).
CREATE TABLE pipeline_moves (
    id              bigserial PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants(id),
    lead_id         uuid NOT NULL REFERENCES leads(id),
    from_stage      text,
    to_stage        text NOT NULL,
    reason          text,
    applied         boolean NOT NULL,
    occurred_at     timestamptz NOT NULL,
    event_id        text NOT NULL UNIQUE,
    correlation_id  text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pipeline_moves_lead_idx ON pipeline_moves (lead_id, occurred_at);
CREATE INDEX pipeline_moves_correlation_id_idx ON pipeline_moves (correlation_id);

CREATE TABLE proposals (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       text NOT NULL REFERENCES tenants(id),
    lead_id         uuid NOT NULL REFERENCES leads(id),
    proposal_ref    text NOT NULL,
    amount          numeric(14, 2),
    currency        text NOT NULL DEFAULT 'BRL',
    description     text,
    status          text NOT NULL DEFAULT 'sent' CHECK (status IN ('sent', 'won')),
    sent_at         timestamptz,
    won_at          timestamptz,
    correlation_id  text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, proposal_ref)
);
CREATE INDEX proposals_lead_idx ON proposals (lead_id);
CREATE INDEX proposals_correlation_id_idx ON proposals (correlation_id);

CREATE TABLE obras (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       text NOT NULL REFERENCES tenants(id),
    lead_id         uuid NOT NULL REFERENCES leads(id),
    proposal_id     uuid REFERENCES proposals(id),
    obra_ref        text NOT NULL,
    title           text NOT NULL,
    address         text,
    area_m2         numeric(10, 2),
    start_date      date,
    status          text NOT NULL,
    correlation_id  text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, obra_ref)
);
CREATE INDEX obras_lead_idx ON obras (lead_id);
CREATE INDEX obras_correlation_id_idx ON obras (correlation_id);
