-- Version 7: balances in a narrow table of their own. Every charged send rewrites its
-- tenant's balance; in the wide users row about 40 tenants shared a 2 KiB page, so a commit
-- of ~25 sends dirtied ~17 pages of users, each written to the WAL and copied back by the
-- checkpointer. A balance row is ~14 bytes: ~130 tenants a page.
CREATE TABLE balances (
    user_id INTEGER PRIMARY KEY REFERENCES users(id),
    micros INTEGER NOT NULL CHECK (micros >= 0)
);
INSERT INTO balances (user_id, micros) SELECT id, balance_micros FROM users;
ALTER TABLE users DROP COLUMN balance_micros;
