-- The writers as functions (issue 16): a delivery's ledger bookkeeping and its event type's
-- write run as ONE statement (shared/writers/ledger.py), so a write costs one round trip
-- instead of one per statement plus BEGIN and COMMIT. Python still parses and validates the
-- payload and passes its values; these functions only write.
--
-- Every function is SECURITY INVOKER (the default): it runs with the caller's own table
-- privileges, so EXECUTE (PUBLIC's by default) lets no role write what it could not already
-- write (the console's role, which only reads these tables, is refused inside them).
-- Errors meant for a person or a retry carry their own SQLSTATE (class CT), which the writers
-- turn back into their Python exceptions (shared/writers/calls.py).

-- An envelope as the ledger records it: what ct_ledger_enter and every write are given.
CREATE TYPE ct_event AS (
    event_id        text,
    event_type      text,
    tenant_id       text,
    source          text,
    correlation_id  text,
    message_id      text,
    envelope        jsonb,
    occurred_at     timestamptz,
    received_at     timestamptz
);

-- The ledger: true when this delivery is the one to apply (a first delivery, inserted as
-- `processed`, or the retry of a failed one); false when the event was processed already
-- (this delivery is recorded as a `duplicate` row, one per Pub/Sub message id).
-- A concurrent delivery's uncommitted row makes the INSERT wait, then follow its outcome.
CREATE FUNCTION ct_ledger_enter(ev ct_event) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    seen text;
BEGIN
    INSERT INTO events (event_id, event_type, tenant_id, source, correlation_id, message_id, status, attempts,
                        envelope, occurred_at, received_at, processed_at)
    VALUES (ev.event_id, ev.event_type, ev.tenant_id, ev.source, ev.correlation_id, ev.message_id, 'processed', 1,
            ev.envelope, ev.occurred_at, ev.received_at, now())
    ON CONFLICT (event_id) WHERE status <> 'duplicate' DO NOTHING;
    IF FOUND THEN
        RETURN true;
    END IF;
    SELECT e.status INTO seen FROM events e WHERE e.event_id = ev.event_id AND e.status <> 'duplicate' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'a concurrent delivery of this event rolled back; retrying' USING ERRCODE = 'CT409';
    END IF;
    IF seen = 'processed' THEN
        INSERT INTO events (event_id, event_type, tenant_id, source, correlation_id, message_id, status, attempts,
                            envelope, occurred_at, received_at)
        VALUES (ev.event_id, ev.event_type, ev.tenant_id, ev.source, ev.correlation_id, ev.message_id, 'duplicate', 1,
                ev.envelope, ev.occurred_at, ev.received_at)
        ON CONFLICT (event_id, message_id) WHERE status = 'duplicate' DO NOTHING;
        RETURN false;
    END IF;
    UPDATE events SET status = 'processed', attempts = attempts + 1, message_id = ev.message_id, last_error = NULL,
                      processed_at = now(), updated_at = now()
    WHERE event_id = ev.event_id AND status <> 'duplicate';
    RETURN true;
END
$$;

-- Leads: found by phone, then by e-mail (only a lead without another phone), locked.
CREATE FUNCTION ct_find_lead(p_tenant text, p_phone text, p_email text) RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    found_id uuid;
BEGIN
    IF p_phone <> '' THEN
        SELECT l.id INTO found_id FROM leads l WHERE l.tenant_id = p_tenant AND l.phone = p_phone FOR UPDATE;
        IF found_id IS NOT NULL THEN
            RETURN found_id;
        END IF;
    END IF;
    IF p_email <> '' THEN
        -- An e-mail only joins a lead that has no other phone: two phones are two people.
        SELECT l.id INTO found_id FROM leads l
        WHERE l.tenant_id = p_tenant AND lower(l.email) = lower(p_email) AND (l.phone IS NULL OR p_phone IS NULL)
        ORDER BY l.created_at LIMIT 1 FOR UPDATE;
    END IF;
    RETURN found_id;
END
$$;

-- The lead's id, created when unknown; an existing lead is only filled in, never overwritten,
-- and stamped with the event's correlation id.
CREATE FUNCTION ct_find_or_create_lead(ev ct_event, p_phone text, p_email text, p_name text, p_source text,
                                       p_funnel text, p_location text, p_project_type text, p_extra jsonb)
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    lead uuid := ct_find_lead(ev.tenant_id, p_phone, p_email);
BEGIN
    IF lead IS NULL THEN
        INSERT INTO leads (tenant_id, phone, email, name, source, funnel, location, project_type, extra,
                           stage_changed_at, correlation_id, last_correlation_id)
        VALUES (ev.tenant_id, p_phone, p_email, p_name, COALESCE(NULLIF(p_source, ''), ev.source), p_funnel,
                p_location, p_project_type, COALESCE(p_extra, '{}'), ev.occurred_at, ev.correlation_id,
                ev.correlation_id)
        ON CONFLICT (tenant_id, phone) WHERE phone IS NOT NULL DO NOTHING
        RETURNING id INTO lead;
        IF lead IS NOT NULL THEN
            RETURN lead;
        END IF;
        lead := ct_find_lead(ev.tenant_id, p_phone, p_email);  -- inserted concurrently
        IF lead IS NULL THEN
            RAISE EXCEPTION 'lead insert conflicted but the lead is not visible; retrying' USING ERRCODE = 'CT409';
        END IF;
    END IF;
    UPDATE leads SET phone = COALESCE(phone, p_phone), email = COALESCE(email, p_email), name = COALESCE(name, p_name),
                     funnel = COALESCE(funnel, p_funnel), location = COALESCE(location, p_location),
                     project_type = COALESCE(project_type, p_project_type), extra = COALESCE(p_extra, '{}') || extra,
                     last_correlation_id = ev.correlation_id, updated_at = now()
    WHERE id = lead;
    RETURN lead;
END
$$;

-- The lead an event names (by id, or by phone: then found or created), locked for update.
CREATE FUNCTION ct_resolve_lead(ev ct_event, p_lead_id uuid, p_phone text) RETURNS leads LANGUAGE plpgsql AS $$
DECLARE
    wanted uuid := COALESCE(p_lead_id, ct_find_or_create_lead(ev, p_phone, NULL, NULL, NULL, NULL, NULL, NULL, NULL));
    lead leads;
BEGIN
    SELECT * INTO lead FROM leads l WHERE l.id = wanted AND l.tenant_id = ev.tenant_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lead % does not exist in tenant %', wanted, ev.tenant_id USING ERRCODE = 'CT404';
    END IF;
    RETURN lead;
END
$$;

-- Pipeline: a move is always recorded, and applied unless a newer one already was (events
-- arrive out of order). A stage time after p_believed_until (our clock plus the skew
-- allowance, written before the edge bounded occurred_at) is not believed, so it cannot freeze the lead.
CREATE FUNCTION ct_move_stage(ev ct_event, lead leads, p_to_stage text, p_reason text, p_from_stage text,
                              p_believed_until timestamptz) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    applied boolean := ev.occurred_at >= lead.stage_changed_at OR lead.stage_changed_at > p_believed_until;
BEGIN
    INSERT INTO pipeline_moves (tenant_id, lead_id, from_stage, to_stage, reason, applied, occurred_at, event_id,
                                correlation_id)
    VALUES (ev.tenant_id, lead.id, COALESCE(NULLIF(p_from_stage, ''), lead.stage), p_to_stage, p_reason, applied,
            ev.occurred_at, ev.event_id, ev.correlation_id);
    IF applied THEN
        UPDATE leads SET stage = p_to_stage, stage_changed_at = ev.occurred_at, last_correlation_id = ev.correlation_id,
                         updated_at = now()
        WHERE id = lead.id;
    END IF;
END
$$;

-- Delivery states only move forward: sent < delivered < failed < read.
CREATE FUNCTION ct_status_rank(p_status text) RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_status WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'failed' THEN 3 WHEN 'read' THEN 4 ELSE 0 END
$$;

-- Apply one recorded status to its reply: its time stamped once, the state moved only forward.
CREATE FUNCTION ct_move_status(p_tenant text, p_reply_event_id text, p_status_id bigint, p_status text,
                               p_reason text, p_at timestamptz) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    forward boolean;
BEGIN
    SELECT ct_status_rank(p_status) > ct_status_rank(o.status) INTO forward
    FROM outbound_messages o WHERE o.tenant_id = p_tenant AND o.reply_event_id = p_reply_event_id;
    UPDATE outbound_messages SET
        sent_at = CASE WHEN p_status = 'sent' THEN COALESCE(sent_at, p_at) ELSE sent_at END,
        delivered_at = CASE WHEN p_status = 'delivered' THEN COALESCE(delivered_at, p_at) ELSE delivered_at END,
        read_at = CASE WHEN p_status = 'read' THEN COALESCE(read_at, p_at) ELSE read_at END,
        failed_at = CASE WHEN p_status = 'failed' THEN COALESCE(failed_at, p_at) ELSE failed_at END,
        status = CASE WHEN forward THEN p_status ELSE status END,
        failure_reason = CASE WHEN p_status = 'failed' THEN COALESCE(p_reason, failure_reason) ELSE failure_reason END,
        updated_at = now()
    WHERE tenant_id = p_tenant AND reply_event_id = p_reply_event_id;
    UPDATE message_statuses SET applied = forward WHERE id = p_status_id;
END
$$;

-- Statuses that arrived before the reply's provider id was recorded, applied oldest first.
CREATE FUNCTION ct_apply_waiting(p_tenant text, p_provider text, p_provider_message_id text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    waiting record;
BEGIN
    FOR waiting IN
        SELECT o.reply_event_id, s.id, s.status, s.reason, s.occurred_at FROM message_statuses s
        JOIN outbound_messages o ON o.tenant_id = s.tenant_id AND o.provider = s.provider
                                AND o.provider_message_id = s.provider_message_id
        WHERE s.tenant_id = p_tenant AND s.provider = p_provider AND s.provider_message_id = p_provider_message_id
          AND NOT s.applied
        ORDER BY s.occurred_at, s.id
    LOOP
        PERFORM ct_move_status(p_tenant, waiting.reply_event_id, waiting.id, waiting.status, waiting.reason,
                               waiting.occurred_at);
    END LOOP;
END
$$;

-- Hand a conversation to `p_to`; false (and nothing recorded) when it already was.
CREATE FUNCTION ct_switch(p_tenant text, p_conversation_id uuid, p_lead_id uuid, p_to text, p_reason text,
                          p_correlation_id text, p_event_id text, p_detail text, p_actor text)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    UPDATE conversations SET handled_by = p_to WHERE id = p_conversation_id AND tenant_id = p_tenant AND handled_by <> p_to;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO handoffs (tenant_id, conversation_id, lead_id, handled_by, reason, detail, event_id, actor,
                          correlation_id)
    VALUES (p_tenant, p_conversation_id, p_lead_id, p_to, p_reason, p_detail, p_event_id, p_actor, p_correlation_id)
    ON CONFLICT DO NOTHING;
    RETURN true;
END
$$;

-- One write per event type: ct_<event type>(the event, the payload's values). PL/pgSQL
-- throughout: its statements' plans are cached per connection (a LANGUAGE sql body that is
-- not inlined is planned again on every call).

CREATE FUNCTION ct_lead_created(ev ct_event, p_phone text, p_email text, p_name text, p_source text, p_funnel text,
                                p_location text, p_project_type text, p_extra jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ct_find_or_create_lead(ev, p_phone, p_email, p_name, p_source, p_funnel, p_location, p_project_type,
                                   p_extra);
END
$$;

-- A message from an unknown phone creates its lead; the conversation keeps the latest time.
CREATE FUNCTION ct_message_received(ev ct_event, p_provider text, p_provider_message_id text, p_direction text,
                                    p_phone text, p_sender_name text, p_lead_name text, p_lead_extra jsonb,
                                    p_chat_id text, p_message_type text, p_body text, p_media jsonb,
                                    p_sent_at timestamptz, p_raw_type text, p_referral jsonb, p_status_reply boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    lead uuid := ct_find_or_create_lead(ev, p_phone, NULL, p_lead_name, p_provider, NULL, NULL, NULL, p_lead_extra);
    conversation uuid;
BEGIN
    INSERT INTO conversations (tenant_id, lead_id, channel, provider, chat_id, correlation_id, last_message_at)
    VALUES (ev.tenant_id, lead, 'whatsapp', p_provider, p_chat_id, ev.correlation_id, p_sent_at)
    ON CONFLICT (tenant_id, lead_id, channel) DO UPDATE SET
        last_message_at = GREATEST(conversations.last_message_at, EXCLUDED.last_message_at),
        provider = EXCLUDED.provider, chat_id = EXCLUDED.chat_id
    RETURNING id INTO conversation;
    INSERT INTO messages (tenant_id, conversation_id, lead_id, provider, provider_message_id, direction, sender_phone,
                          sender_name, message_type, body, media, sent_at, event_id, correlation_id, raw_type, referral,
                          status_reply)
    VALUES (ev.tenant_id, conversation, lead, p_provider, p_provider_message_id, p_direction, p_phone, p_sender_name,
            p_message_type, p_body, p_media, p_sent_at, ev.event_id, ev.correlation_id, p_raw_type, p_referral,
            p_status_reply)
    ON CONFLICT (tenant_id, provider, provider_message_id) DO NOTHING;
END
$$;

CREATE FUNCTION ct_stage_changed(ev ct_event, p_lead_id uuid, p_phone text, p_to_stage text, p_reason text,
                                 p_from_stage text, p_believed_until timestamptz) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ct_move_stage(ev, ct_resolve_lead(ev, p_lead_id, p_phone), p_to_stage, p_reason, p_from_stage,
                          p_believed_until);
END
$$;

CREATE FUNCTION ct_proposal_sent(ev ct_event, p_lead_id uuid, p_phone text, p_proposal_ref text, p_amount numeric,
                                 p_currency text, p_description text, p_to_stage text, p_reason text,
                                 p_believed_until timestamptz) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    lead leads := ct_resolve_lead(ev, p_lead_id, p_phone);
BEGIN
    INSERT INTO proposals (tenant_id, lead_id, proposal_ref, amount, currency, description, status, sent_at,
                           correlation_id)
    VALUES (ev.tenant_id, lead.id, p_proposal_ref, p_amount, p_currency, p_description, 'sent', ev.occurred_at,
            ev.correlation_id)
    ON CONFLICT (tenant_id, proposal_ref) DO UPDATE SET amount = EXCLUDED.amount, currency = EXCLUDED.currency,
        description = COALESCE(EXCLUDED.description, proposals.description), sent_at = EXCLUDED.sent_at,
        correlation_id = EXCLUDED.correlation_id, updated_at = now();
    PERFORM ct_move_stage(ev, lead, p_to_stage, p_reason, NULL, p_believed_until);
END
$$;

CREATE FUNCTION ct_won(ev ct_event, p_lead_id uuid, p_phone text, p_proposal_ref text, p_amount numeric,
                       p_to_stage text, p_reason text, p_believed_until timestamptz) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    lead leads := ct_resolve_lead(ev, p_lead_id, p_phone);
BEGIN
    IF p_proposal_ref <> '' THEN
        INSERT INTO proposals (tenant_id, lead_id, proposal_ref, amount, status, won_at, correlation_id)
        VALUES (ev.tenant_id, lead.id, p_proposal_ref, p_amount, 'won', ev.occurred_at, ev.correlation_id)
        ON CONFLICT (tenant_id, proposal_ref) DO UPDATE SET status = 'won', won_at = EXCLUDED.won_at,
            amount = COALESCE(EXCLUDED.amount, proposals.amount), correlation_id = EXCLUDED.correlation_id,
            updated_at = now();
    END IF;
    PERFORM ct_move_stage(ev, lead, p_to_stage, p_reason, NULL, p_believed_until);
END
$$;

-- An obra is linked to its proposal when that proposal is known.
CREATE FUNCTION ct_obra_created(ev ct_event, p_lead_id uuid, p_phone text, p_obra_ref text, p_title text,
                                p_proposal_ref text, p_address text, p_area_m2 numeric, p_start_date date,
                                p_status text) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    lead leads := ct_resolve_lead(ev, p_lead_id, p_phone);
    proposal uuid;
BEGIN
    IF p_proposal_ref <> '' THEN
        SELECT p.id INTO proposal FROM proposals p WHERE p.tenant_id = ev.tenant_id AND p.proposal_ref = p_proposal_ref;
    END IF;
    INSERT INTO obras (tenant_id, lead_id, proposal_id, obra_ref, title, address, area_m2, start_date, status,
                       correlation_id)
    VALUES (ev.tenant_id, lead.id, proposal, p_obra_ref, p_title, p_address, p_area_m2, p_start_date, p_status,
            ev.correlation_id)
    ON CONFLICT (tenant_id, obra_ref) DO NOTHING;
END
$$;

-- A status is always kept; it moves its reply now when the reply's provider id (or the
-- outbox's callback_ref) is recorded, else it waits for ct_apply_waiting. A reply still
-- `sending` is left to reply_sender's reconciliation.
CREATE FUNCTION ct_message_status(ev ct_event, p_provider text, p_provider_message_id text, p_status text,
                                  p_reason text, p_callback_ref text, p_recipient text, p_at timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    status_id bigint;
    reply text;
BEGIN
    INSERT INTO message_statuses (tenant_id, provider, provider_message_id, status, reason, callback_ref, recipient,
                                  occurred_at, event_id, correlation_id)
    VALUES (ev.tenant_id, p_provider, p_provider_message_id, p_status, p_reason, p_callback_ref, p_recipient, p_at,
            ev.event_id, ev.correlation_id)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING id INTO status_id;
    IF status_id IS NULL THEN
        RETURN;
    END IF;
    SELECT o.reply_event_id INTO reply FROM outbound_messages o
    WHERE o.tenant_id = ev.tenant_id
      AND ((o.provider = p_provider AND o.provider_message_id = p_provider_message_id) OR o.callback_ref = p_callback_ref)
      AND o.status NOT IN ('pending', 'sending')
    FOR UPDATE;
    IF FOUND THEN
        PERFORM ct_move_status(ev.tenant_id, reply, status_id, p_status, p_reason, p_at);
    END IF;
END
$$;

-- A person takes a conversation over, or hands it back (from the console).
CREATE FUNCTION ct_handoff_requested(ev ct_event, p_conversation_id uuid, p_lead_id uuid, p_to text, p_actor text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM conversations c
    WHERE c.id = p_conversation_id AND c.tenant_id = ev.tenant_id AND c.lead_id = p_lead_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'conversation % of lead % is not in tenant %', p_conversation_id, p_lead_id, ev.tenant_id
            USING ERRCODE = 'CT410';
    END IF;
    PERFORM ct_switch(ev.tenant_id, p_conversation_id, p_lead_id, p_to, 'operator', ev.correlation_id, ev.event_id,
                      'console', p_actor);
END
$$;

CREATE FUNCTION ct_note_added(ev ct_event, p_lead_id uuid, p_phone text, p_body text, p_author text,
                              p_author_id uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    lead leads := ct_resolve_lead(ev, p_lead_id, p_phone);
BEGIN
    INSERT INTO lead_notes (tenant_id, lead_id, body, author, author_id, event_id, correlation_id, created_at)
    VALUES (ev.tenant_id, lead.id, p_body, p_author, p_author_id, ev.event_id, ev.correlation_id, ev.occurred_at)
    ON CONFLICT (event_id) DO NOTHING;
END
$$;
