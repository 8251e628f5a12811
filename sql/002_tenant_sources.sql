-- Tenants' sources: which platforms each tenant takes, the NAMES of the secrets that
-- prove them (values live in Secret Manager / the environment, never here) and the
-- platform ids (instance, app, phone number, page, form) each accepts. Edited with
-- `ctower tenants`, which publishes them as the JSON document the webhook edge reads
-- (the edge never reads the database).

ALTER TABLE tenants ADD COLUMN require_proof boolean NOT NULL DEFAULT true;
ALTER TABLE tenants ADD COLUMN active boolean NOT NULL DEFAULT true;
ALTER TABLE tenants ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

CREATE TABLE tenant_sources (
    tenant_id   text NOT NULL REFERENCES tenants(id),
    channel     text NOT NULL CHECK (channel IN ('whatsapp', 'leads')),
    source      text NOT NULL CHECK (source ~ '^[a-z0-9_]{2,40}$'),
    settings    jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, channel, source)
);
