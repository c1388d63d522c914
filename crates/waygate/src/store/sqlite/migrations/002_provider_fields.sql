-- Version 2: what real providers need on a message.
-- When an attempt's outcome was unknown (timeout, 5xx): the attempt's start, until reconciled.
ALTER TABLE messages ADD COLUMN unknown_since INTEGER;
-- Inbound media as a JSON array of {"url","content_type"}, and a button reply's payload.
ALTER TABLE messages ADD COLUMN media TEXT;
ALTER TABLE messages ADD COLUMN button_payload TEXT;
CREATE INDEX IF NOT EXISTS senders_phone ON senders(phone_number);
