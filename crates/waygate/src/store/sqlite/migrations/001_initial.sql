-- waygate SQLite schema, version 1 (each later file in this directory is one more version). Times are unix milliseconds; money is integer micro-units.
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    balance_micros INTEGER NOT NULL DEFAULT 0 CHECK (balance_micros >= 0),
    created_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE IF NOT EXISTS senders (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    phone_number TEXT NOT NULL,
    display_name TEXT NOT NULL,
    status TEXT NOT NULL,
    quality_rating TEXT NOT NULL,
    messaging_limit INTEGER,
    provider TEXT NOT NULL,
    provider_ref TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS senders_user ON senders(user_id, id);

CREATE TABLE IF NOT EXISTS templates (
    id INTEGER PRIMARY KEY,
    sender_id INTEGER NOT NULL REFERENCES senders(id),
    name TEXT NOT NULL,
    language TEXT NOT NULL,
    category TEXT NOT NULL,
    status TEXT NOT NULL,
    body_text TEXT NOT NULL,
    variables TEXT NOT NULL, -- JSON array of names, one per placeholder
    provider_ref TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (sender_id, name, language)
);

-- One conversation per (sender, recipient); a sender belongs to one user.
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL,
    sender_id INTEGER NOT NULL,
    recipient_phone TEXT NOT NULL,
    customer_name TEXT,
    last_message_at INTEGER NOT NULL,
    last_customer_message_at INTEGER,
    last_template_at INTEGER,
    created_at INTEGER NOT NULL,
    UNIQUE (sender_id, recipient_phone)
);
CREATE INDEX IF NOT EXISTS conversations_activity ON conversations(user_id, last_message_at, id);

CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    sender_id INTEGER NOT NULL,
    direction TEXT NOT NULL,
    recipient_phone TEXT NOT NULL,
    template_id INTEGER,
    variables TEXT, -- JSON array of rendered values, for providers that send them separately
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    message_sid TEXT UNIQUE,
    error_code INTEGER,
    error_message TEXT,
    price_micros INTEGER NOT NULL,
    status_history TEXT NOT NULL, -- JSON array of {"status","at"}
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_conversation ON messages(conversation_id, id);

-- Append-only; users.balance_micros is its running sum, kept in the same transaction.
CREATE TABLE IF NOT EXISTS ledger_entries (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('credit', 'charge', 'refund')),
    amount_micros INTEGER NOT NULL,
    message_id INTEGER,
    reference TEXT,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS ledger_refund_once ON ledger_entries(message_id) WHERE kind = 'refund';
CREATE UNIQUE INDEX IF NOT EXISTS ledger_credit_reference ON ledger_entries(user_id, reference) WHERE kind = 'credit';

-- Business-initiated conversation starts, for the rolling 24 h messaging limit.
CREATE TABLE IF NOT EXISTS business_initiations (
    sender_id INTEGER NOT NULL,
    recipient_phone TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS business_initiations_window ON business_initiations(sender_id, at);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    user_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    message_id INTEGER NOT NULL,
    response_status INTEGER,
    response_body TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
);

CREATE TABLE IF NOT EXISTS webhooks (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL,
    url TEXT NOT NULL,
    events TEXT NOT NULL, -- JSON array
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_until INTEGER,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE INDEX IF NOT EXISTS webhooks_user ON webhooks(user_id, id);

-- The outbox. A job is due when run_at <= now; claiming pushes run_at forward by a lease.
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    run_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    dead INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs(dead, run_at);
