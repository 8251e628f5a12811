-- Console invitations (issue 15): an admin invites a person to their tenant with a
-- one-time link; the person sets their own password there. Only a keyed hash of the
-- link's token is stored. The console may now create users (from an invitation only).

CREATE TABLE console_invites (
    token_hash  text PRIMARY KEY,             -- HMAC-SHA256 of the link's token
    tenant_id   text NOT NULL REFERENCES tenants(id),
    email       text NOT NULL CHECK (email = lower(email) AND email LIKE '%_@_%'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role        text NOT NULL CHECK (role IN ('admin', 'seller', 'viewer')),
    invited_by  uuid NOT NULL REFERENCES console_users(id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX console_invites_tenant_idx ON console_invites (tenant_id, created_at DESC);

GRANT SELECT, INSERT, UPDATE ON console_invites TO ct_console;
GRANT INSERT ON console_users TO ct_console;  -- a user made from an accepted invitation (roles: UPDATE, 021)
