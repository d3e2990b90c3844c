-- The hub's channels: the chain record it learned plus its latest co-signed snapshot.
CREATE TABLE channels (
    id BYTEA PRIMARY KEY,
    client BYTEA NOT NULL,
    deposit_a BIGINT NOT NULL,
    deposit_b BIGINT NOT NULL,
    challenge_period BIGINT NOT NULL,
    status TEXT NOT NULL,
    version BIGINT NOT NULL,
    snapshot BYTEA NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX channels_client ON channels (client);

-- Routed payments, keyed by hashlock, and every status transition they went through.
CREATE TABLE payments (
    hashlock BYTEA PRIMARY KEY,
    payer BYTEA NOT NULL,
    payee BYTEA NOT NULL,
    channel_in BYTEA NOT NULL,
    channel_out BYTEA,
    amount BIGINT NOT NULL,
    amount_in BIGINT NOT NULL,
    expiry_in BIGINT NOT NULL,
    expiry_out BIGINT,
    status TEXT NOT NULL,
    reason TEXT,
    secret BYTEA,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX payments_status ON payments (status);

CREATE TABLE payment_events (
    id BIGSERIAL PRIMARY KEY,
    hashlock BYTEA NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    at BIGINT NOT NULL
);
CREATE INDEX payment_events_hashlock ON payment_events (hashlock);

-- The last chain height whose events were fully processed.
CREATE TABLE chain_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    height BIGINT NOT NULL
);
INSERT INTO chain_cursor (id, height) VALUES (1, 0);

-- One on-chain action per channel at a time: a deposit job is kept until included.
CREATE TABLE collateral_jobs (
    channel_id BYTEA PRIMARY KEY,
    amount BIGINT NOT NULL,
    status TEXT NOT NULL,
    tx_id BYTEA,
    attempts BIGINT NOT NULL,
    last_error TEXT,
    updated_at BIGINT NOT NULL
);
