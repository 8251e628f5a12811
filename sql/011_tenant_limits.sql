-- Limits per tenant (issue 14). Over a limit nothing is lost: every event is still
-- recorded by the writers; only the assistant stops answering (its turn is kept with
-- status `over_limit`, and a log line with event_status "over_limit" feeds the alert).
-- A tenant without a row has the defaults (the old runbook's numbers).

CREATE TABLE tenant_limits (
    tenant_id                   text PRIMARY KEY REFERENCES tenants(id),
    messages_per_minute         integer NOT NULL DEFAULT 500 CHECK (messages_per_minute > 0),
    new_leads_per_day           integer NOT NULL DEFAULT 2000 CHECK (new_leads_per_day > 0),
    assistant_calls_per_day     integer CHECK (assistant_calls_per_day >= 0),   -- NULL: settings.json daily_budget
    assistant_tokens_per_day    integer CHECK (assistant_tokens_per_day >= 0),  -- NULL: settings.json daily_budget
    sends_per_minute_per_number integer NOT NULL DEFAULT 30 CHECK (sends_per_minute_per_number > 0),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);

-- The counts the limits read: inbound messages in the last minute, leads created today.
CREATE INDEX messages_tenant_inbound_created_idx ON messages (tenant_id, created_at) WHERE direction = 'inbound';
CREATE INDEX leads_tenant_created_idx ON leads (tenant_id, created_at);

-- Outbound pacing: the next free send slot of each sending number (provider account).
CREATE TABLE send_pacing (
    sender     text PRIMARY KEY,   -- "<provider>:<account>", see SenderSettings.sender_number
    next_slot  timestamptz NOT NULL
);

ALTER TABLE assistant_turns DROP CONSTRAINT assistant_turns_status_check;
ALTER TABLE assistant_turns ADD CONSTRAINT assistant_turns_status_check
    CHECK (status IN ('pending', 'answered', 'superseded', 'skipped', 'handoff', 'over_budget', 'over_limit'));
