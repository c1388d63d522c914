-- Version 8: what changes about a message after it is written (its status, the history of
-- steps and the provider's error) in a narrow table of its own. Each status step rewrote and
-- grew the whole ~330-byte message row; the simulator's three steps per send were a quarter
-- of the writer's time and a third of the checkpointer's bytes.
CREATE TABLE message_status (
    message_id INTEGER PRIMARY KEY,
    status TEXT NOT NULL,
    status_history TEXT NOT NULL, -- JSON array of {"status","at"}
    error_code INTEGER,
    error_message TEXT
);
INSERT INTO message_status (message_id, status, status_history, error_code, error_message)
    SELECT id, status, status_history, error_code, error_message FROM messages;
ALTER TABLE messages DROP COLUMN status;
ALTER TABLE messages DROP COLUMN status_history;
ALTER TABLE messages DROP COLUMN error_code;
ALTER TABLE messages DROP COLUMN error_message;
