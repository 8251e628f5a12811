-- The operators' audit trail (issue 5): one row per run of a command that moves or
-- drops messages (`ctower dlq redrive`, `dlq purge`, `events replay`). The row is
-- written when the run starts and completed when it ends, so a run that dies midway
-- still says who started what. The ids it touched are kept so `ctower trace` can show
-- the redrives of a correlation id.

CREATE TABLE ops_audit (
    id               bigserial PRIMARY KEY,
    command          text NOT NULL,                 -- 'dlq redrive', 'dlq purge', 'events replay'
    operator         text NOT NULL,                 -- --operator, gcloud account or OS user
    target           text NOT NULL,                 -- 'local:<project>' or 'cloud:<project>'
    filter           jsonb NOT NULL DEFAULT '{}'::jsonb,
    dry_run          boolean NOT NULL DEFAULT false,
    status           text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ok', 'partial', 'failed')),
    matched          integer NOT NULL DEFAULT 0,
    moved            integer NOT NULL DEFAULT 0,    -- republished (redrive, replay) or dropped (purge)
    skipped          integer NOT NULL DEFAULT 0,    -- left in place: over the redrive limit, not failed, ...
    failed           integer NOT NULL DEFAULT 0,    -- publish not confirmed: left in place (nacked)
    event_ids        text[] NOT NULL DEFAULT '{}',  -- moved, skipped or failed
    correlation_ids  text[] NOT NULL DEFAULT '{}',
    detail           jsonb NOT NULL DEFAULT '{}'::jsonb,  -- errors and what was left in place, and why
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
CREATE INDEX ops_audit_started_idx ON ops_audit (started_at DESC);
CREATE INDEX ops_audit_correlation_ids_idx ON ops_audit USING gin (correlation_ids);
CREATE INDEX ops_audit_event_ids_idx ON ops_audit USING gin (event_ids);
