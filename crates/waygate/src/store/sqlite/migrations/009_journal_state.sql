-- Version 9: where the journal stands. `applied_seq` is the last journal record whose
-- effects a commit holds (a restart runs the records after it again); `plain_commits`
-- counts the commits of writes that are not journaled, which the records after them
-- depend on (see store/sqlite/journal.rs).
CREATE TABLE journal_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    applied_seq INTEGER NOT NULL,
    plain_commits INTEGER NOT NULL
);
INSERT INTO journal_state (id, applied_seq, plain_commits) VALUES (1, 0, 0);
