-- The console's database role (issue 15): what the console function's own database user
-- may do, and nothing more. In the cloud its IAM database user is made a member of this
-- role (terraform: `gcloud sql users assign-roles ... --database-roles=ct_console`).
-- It reads the pipeline; it writes only its own users' sessions, login throttling and the
-- record of who asked for each event (every other change goes out as an event).
-- Roles are cluster-wide: made once, whichever database migrates first.

DO $$
BEGIN
    CREATE ROLE ct_console NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

GRANT USAGE ON SCHEMA public TO ct_console;
GRANT SELECT ON tenants, tenant_sources, events, leads, conversations, messages, pipeline_moves, proposals, obras, handoffs,
                assistant_turns, lead_notes TO ct_console;
GRANT SELECT, UPDATE ON console_users TO ct_console;  -- UPDATE: a hash re-made with newer Argon2 parameters
GRANT SELECT, INSERT, UPDATE ON console_sessions TO ct_console;
GRANT SELECT, INSERT, UPDATE, DELETE ON console_login_failures TO ct_console;
GRANT SELECT, INSERT ON console_actions TO ct_console;
