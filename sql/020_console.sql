-- The sellers' console (issue 15): its users, their sessions, login throttling, the notes
-- people write on a lead, and who in the console asked for each event it published.
--
-- A user belongs to one tenant (admin, seller, viewer) or to none (operator: sees every
-- tenant). Passwords are Argon2id hashes; a session row holds only a keyed hash of the
-- cookie's token, so reading this table gives no live session.

CREATE TABLE console_users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      text REFERENCES tenants(id),
    email          text NOT NULL CHECK (email = lower(email) AND email LIKE '%_@_%'),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role           text NOT NULL CHECK (role IN ('operator', 'admin', 'seller', 'viewer')),
    password_hash  text NOT NULL,
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'operator') = (tenant_id IS NULL))
);
CREATE UNIQUE INDEX console_users_email_key ON console_users (email);
CREATE INDEX console_users_tenant_idx ON console_users (tenant_id);

-- Wrong passwords per e-mail typed (known or not, so the lock says nothing about who exists).
CREATE TABLE console_login_failures (
    email          text PRIMARY KEY,
    failures       integer NOT NULL DEFAULT 0,
    locked_until   timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE console_sessions (
    token_hash     text PRIMARY KEY,            -- HMAC-SHA256 of the cookie's token
    user_id        uuid NOT NULL REFERENCES console_users(id),
    tenant_id      text REFERENCES tenants(id), -- the tenant an operator is looking at
    csrf_token     text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz
);
CREATE INDEX console_sessions_user_idx ON console_sessions (user_id) WHERE revoked_at IS NULL;

-- Every event the console published, with the person who asked for it (the writers stay
-- generic; the timeline joins here by event_id to say who moved a stage or took over).
CREATE TABLE console_actions (
    event_id        text PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants(id),
    user_id         uuid NOT NULL REFERENCES console_users(id),
    event_type      text NOT NULL,
    lead_id         uuid REFERENCES leads(id),
    correlation_id  text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_actions_lead_idx ON console_actions (lead_id, created_at);
CREATE INDEX console_actions_correlation_id_idx ON console_actions (correlation_id);

-- Notes people write on a lead (event note_added, written by the leads writer).
CREATE TABLE lead_notes (
    id              bigserial PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants(id),
    lead_id         uuid NOT NULL REFERENCES leads(id),
    body            text NOT NULL,
    author          text NOT NULL,
    author_id       uuid REFERENCES console_users(id),
    event_id        text NOT NULL UNIQUE,
    correlation_id  text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lead_notes_lead_idx ON lead_notes (lead_id, created_at);
CREATE INDEX lead_notes_correlation_id_idx ON lead_notes (correlation_id);

-- The console user who wrote an outbound message (sent_by = 'human').
ALTER TABLE messages ADD COLUMN sent_by_user uuid REFERENCES console_users(id);
