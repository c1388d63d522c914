-- Version 12: templates created by tenants and approved by WhatsApp, senders kept in sync.
-- What a submission carried, and what review said of it.
ALTER TABLE templates ADD COLUMN samples TEXT NOT NULL DEFAULT '[]'; -- JSON array, one per placeholder
ALTER TABLE templates ADD COLUMN header_text TEXT;
ALTER TABLE templates ADD COLUMN footer_text TEXT;
ALTER TABLE templates ADD COLUMN buttons TEXT NOT NULL DEFAULT '[]'; -- JSON array of {type, text, url?, phone_number?}
ALTER TABLE templates ADD COLUMN rejection_reason TEXT;
ALTER TABLE templates ADD COLUMN updated_at INTEGER;
UPDATE templates SET updated_at = created_at;
-- Meta senders belong to a WhatsApp Business Account, where their templates live.
ALTER TABLE senders ADD COLUMN waba_id TEXT;
-- When each template's and sender's status is next read from its provider. Kept apart from
-- the rows themselves, so that moving a schedule does not move `directory_version` (whose
-- triggers drop every node's cache of senders and templates).
CREATE TABLE template_sync (
    template_id INTEGER PRIMARY KEY,
    due_at INTEGER NOT NULL
);
CREATE INDEX template_sync_due ON template_sync(due_at);
CREATE TABLE sender_sync (
    sender_id INTEGER PRIMARY KEY,
    due_at INTEGER NOT NULL
);
CREATE INDEX sender_sync_due ON sender_sync(due_at);
-- Every template and sender is read back from its provider, the first time at once.
INSERT INTO template_sync (template_id, due_at) SELECT id, 0 FROM templates;
INSERT INTO sender_sync (sender_id, due_at) SELECT id, 0 FROM senders;
