-- Version 3: a counter that moves whenever an API key, sender or template changes, from any
-- process. A running server caches these and polls the counter, so that a change made with
-- the CLI (another process) reaches it without the hot path reading the database.
CREATE TABLE IF NOT EXISTS directory_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT OR IGNORE INTO directory_version (id, version) VALUES (1, 0);
CREATE TRIGGER IF NOT EXISTS api_keys_inserted AFTER INSERT ON api_keys BEGIN UPDATE directory_version SET version = version + 1; END;
CREATE TRIGGER IF NOT EXISTS api_keys_updated AFTER UPDATE ON api_keys BEGIN UPDATE directory_version SET version = version + 1; END;
CREATE TRIGGER IF NOT EXISTS api_keys_deleted AFTER DELETE ON api_keys BEGIN UPDATE directory_version SET version = version + 1; END;
CREATE TRIGGER IF NOT EXISTS senders_inserted AFTER INSERT ON senders BEGIN UPDATE directory_version SET version = version + 1; END;
CREATE TRIGGER IF NOT EXISTS senders_updated AFTER UPDATE ON senders BEGIN UPDATE directory_version SET version = version + 1; END;
CREATE TRIGGER IF NOT EXISTS senders_deleted AFTER DELETE ON senders BEGIN UPDATE directory_version SET version = version + 1; END;
CREATE TRIGGER IF NOT EXISTS templates_inserted AFTER INSERT ON templates BEGIN UPDATE directory_version SET version = version + 1; END;
CREATE TRIGGER IF NOT EXISTS templates_updated AFTER UPDATE ON templates BEGIN UPDATE directory_version SET version = version + 1; END;
CREATE TRIGGER IF NOT EXISTS templates_deleted AFTER DELETE ON templates BEGIN UPDATE directory_version SET version = version + 1; END;
