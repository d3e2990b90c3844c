-- The wallet's single source of truth: channels with their latest co-signed snapshot, invoices
-- (with secrets, stored before the invoice is shown), payments, watchtowers, the appointment
-- queue and the tower receipts, plus small key/value metadata such as the chain cursor.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE channels (
    id               TEXT PRIMARY KEY,
    hub              TEXT NOT NULL,
    salt             TEXT NOT NULL,
    challenge_period INTEGER NOT NULL,
    deposit          INTEGER NOT NULL,
    -- opening | open | final | closing | settled | failed
    status           TEXT NOT NULL,
    version          INTEGER NOT NULL,
    -- latest co-signed Snapshot (JSON), version 0 = the opening state
    snapshot         TEXT NOT NULL,
    created_at       INTEGER NOT NULL
);

CREATE TABLE invoices (
    hashlock   TEXT PRIMARY KEY,
    secret     TEXT NOT NULL,
    amount     INTEGER NOT NULL,
    memo       TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    encoded    TEXT NOT NULL,
    paid       INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE payments (
    hashlock   TEXT NOT NULL,
    -- out | in
    direction  TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    amount     INTEGER NOT NULL,
    fee        INTEGER NOT NULL,
    -- pending | completed | failed
    status     TEXT NOT NULL,
    secret     TEXT,
    reason     TEXT,
    invoice    TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (hashlock, direction)
);

CREATE TABLE towers (
    address  TEXT PRIMARY KEY,
    url      TEXT NOT NULL,
    added_at INTEGER NOT NULL
);

-- Appointments waiting to be delivered; only the newest version per tower and channel is kept.
CREATE TABLE appointment_queue (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    tower      TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    version    INTEGER NOT NULL,
    body       TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (tower, channel_id)
);

CREATE TABLE receipts (
    tower      TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    version    INTEGER NOT NULL,
    receipt    TEXT NOT NULL,
    PRIMARY KEY (tower, channel_id)
);
