-- Version 11: nothing sent twice after a crash, no status left behind by a lost callback.
-- `jobs.attempt_started`: when the claim of a send job that may be talking to its provider
-- began. Settling the attempt clears it; a claim that finds it still set knows the earlier
-- attempt's outcome is unknown (its process died or hung), so the send is reconciled with the
-- provider before any resend.
ALTER TABLE jobs ADD COLUMN attempt_started INTEGER;
-- Send jobs that were waiting when this version arrived may have been in flight in a process
-- that died: reconcile each once rather than risk a duplicate.
UPDATE jobs SET attempt_started = created_at WHERE kind = 'send' AND dead = 0;
-- When to ask the provider for the status of a message it accepted, how often it was asked,
-- and since when the provider could not tell (an operator's case: shown on the message).
ALTER TABLE message_status ADD COLUMN recheck_at INTEGER;
ALTER TABLE message_status ADD COLUMN rechecks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE message_status ADD COLUMN status_unknown_since INTEGER;
ALTER TABLE message_status ADD COLUMN status_unknown_reason TEXT;
CREATE INDEX message_status_recheck ON message_status(recheck_at) WHERE recheck_at IS NOT NULL;
CREATE INDEX message_status_unknown ON message_status(status_unknown_since) WHERE status_unknown_since IS NOT NULL;
CREATE INDEX jobs_set_aside ON jobs(id) WHERE dead = 1;
