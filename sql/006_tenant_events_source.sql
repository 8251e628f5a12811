-- The back-office events API per tenant: a tenant's `events/api` source names the secret
-- holding its API key (`ctower tenants set-source <t> events/api --secret NAME`).

ALTER TABLE tenant_sources DROP CONSTRAINT tenant_sources_channel_check;
ALTER TABLE tenant_sources ADD CONSTRAINT tenant_sources_channel_check
    CHECK (channel IN ('whatsapp', 'leads', 'events'));
