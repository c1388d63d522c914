-- Version 7: the activity order leaves the send path (see store/sqlite/activity.rs). The index
-- holds `listed_at`, the activity as of the writer's last fold; a conversation whose activity
-- moved since is in conversation_activity_log until the next fold. A conversation not folded yet
-- holds minus its time, which keeps it out of the index.
ALTER TABLE conversations ADD COLUMN listed_at INTEGER;
UPDATE conversations SET listed_at = last_message_at;
DROP INDEX IF EXISTS conversations_activity;
CREATE INDEX conversations_listed ON conversations(user_id, listed_at, id) WHERE listed_at > 0;
CREATE TABLE conversation_activity_log (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL
);
