-- Watchtower store (SQLite). One row per watched channel: its highest co-signed version.
CREATE TABLE users (
    user_key BLOB PRIMARY KEY,
    quota BIGINT NOT NULL,
    registered_height BIGINT NOT NULL
);

-- Every nonce a user has spent, so that no signed request can be replayed.
CREATE TABLE used_nonces (
    user_key BLOB NOT NULL,
    nonce BLOB NOT NULL,
    PRIMARY KEY (user_key, nonce)
);

CREATE TABLE appointments (
    channel_id BLOB PRIMARY KEY,
    party_a BLOB NOT NULL,
    party_b BLOB NOT NULL,
    salt BLOB NOT NULL,
    version BIGINT NOT NULL,
    snapshot BLOB NOT NULL,
    stored_height BIGINT NOT NULL
);

-- Which users asked for which channel (at most its two parties); counts against quotas.
CREATE TABLE watches (
    user_key BLOB NOT NULL,
    channel_id BLOB NOT NULL,
    PRIMARY KEY (user_key, channel_id)
);
CREATE INDEX watches_by_channel ON watches (channel_id);

-- Channels seen closing on chain whose window is still open.
CREATE TABLE closings (
    channel_id BLOB PRIMARY KEY,
    version BIGINT NOT NULL,
    settle_after BIGINT NOT NULL
);

-- The tower's reaction to a stale close: attempts and outcome.
CREATE TABLE responses (
    channel_id BLOB PRIMARY KEY,
    our_version BIGINT NOT NULL,
    onchain_version BIGINT NOT NULL,
    settle_after BIGINT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    last_tx BLOB,
    last_fee BIGINT NOT NULL,
    submitted_height BIGINT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX responses_by_status ON responses (status);

-- Last chain height whose events were fully processed.
CREATE TABLE chain_cursor (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    height BIGINT NOT NULL
);
