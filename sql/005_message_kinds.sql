-- Issue 18: what a message is, beyond the shared vocabulary in message_type.
-- raw_type: the provider's own name for the kind, wrappers included (ephemeralMessage/audioMessage),
--           so a kind the code does not know is kept, never dropped.
-- referral: the click-to-WhatsApp ad (source_id, ctwa_clid, ...) the lead came from.
-- status_reply: the lead answered the business's status/story.
ALTER TABLE messages ADD COLUMN raw_type text;
ALTER TABLE messages ADD COLUMN referral jsonb;
ALTER TABLE messages ADD COLUMN status_reply boolean NOT NULL DEFAULT false;
CREATE INDEX messages_referral_source_idx ON messages (tenant_id, (referral ->> 'source_id'))
    WHERE referral IS NOT NULL;
