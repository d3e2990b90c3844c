-- Watchtower store (Postgres). One row per watched channel: its highest co-signed version.
CREATE TABLE users (
    user_key BYTEA PRIMARY KEY,
    quota BIGINT NOT NULL,
    registered_height BIGINT NOT NULL
);

-- Every nonce a user has spent, so that no signed request can be replayed.
CREATE TABLE used_nonces (
    user_key BYTEA NOT NULL,
    nonce BYTEA NOT NULL,
    PRIMARY KEY (user_key, nonce)
);

CREATE TABLE appointments (
    channel_id BYTEA PRIMARY KEY,
    party_a BYTEA NOT NULL,
    party_b BYTEA NOT NULL,
    salt BYTEA NOT NULL,
    version BIGINT NOT NULL,
    snapshot BYTEA NOT NULL,
    stored_height BIGINT NOT NULL
);

-- Which users asked for which channel (at most its two parties); counts against quotas.
CREATE TABLE watches (
    user_key BYTEA NOT NULL,
    channel_id BYTEA NOT NULL,
    PRIMARY KEY (user_key, channel_id)
);
CREATE INDEX watches_by_channel ON watches (channel_id);

-- Channels seen closing on chain whose window is still open.
CREATE TABLE closings (
    channel_id BYTEA PRIMARY KEY,
    version BIGINT NOT NULL,
    settle_after BIGINT NOT NULL
);

-- The tower's reaction to a stale close: attempts and outcome.
CREATE TABLE responses (
    channel_id BYTEA PRIMARY KEY,
    our_version BIGINT NOT NULL,
    onchain_version BIGINT NOT NULL,
    settle_after BIGINT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    last_tx BYTEA,
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
