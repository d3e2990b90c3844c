-- The hub's channels: the chain record it learned plus its latest co-signed snapshot.
CREATE TABLE channels (
    id BLOB PRIMARY KEY,
    client BLOB NOT NULL,
    deposit_a INTEGER NOT NULL,
    deposit_b INTEGER NOT NULL,
    challenge_period INTEGER NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    snapshot BLOB NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX channels_client ON channels (client);

-- Routed payments, keyed by hashlock, and every status transition they went through.
CREATE TABLE payments (
    hashlock BLOB PRIMARY KEY,
    payer BLOB NOT NULL,
    payee BLOB NOT NULL,
    channel_in BLOB NOT NULL,
    channel_out BLOB,
    amount INTEGER NOT NULL,
    amount_in INTEGER NOT NULL,
    expiry_in INTEGER NOT NULL,
    expiry_out INTEGER,
    status TEXT NOT NULL,
    reason TEXT,
    secret BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX payments_status ON payments (status);

CREATE TABLE payment_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hashlock BLOB NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    at INTEGER NOT NULL
);
CREATE INDEX payment_events_hashlock ON payment_events (hashlock);

-- The last chain height whose events were fully processed.
CREATE TABLE chain_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    height INTEGER NOT NULL
);
INSERT INTO chain_cursor (id, height) VALUES (1, 0);

-- One on-chain action per channel at a time: a deposit job is kept until included.
CREATE TABLE collateral_jobs (
    channel_id BLOB PRIMARY KEY,
    amount INTEGER NOT NULL,
    status TEXT NOT NULL,
    tx_id BLOB,
    attempts INTEGER NOT NULL,
    last_error TEXT,
    updated_at INTEGER NOT NULL
);
