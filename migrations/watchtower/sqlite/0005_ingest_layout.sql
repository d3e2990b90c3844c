-- Tables keyed the way ingest reads and writes them, each one B-tree (WITHOUT ROWID) instead of
-- a rowid table plus a separate key index: fewer pages touched per appointment.
-- Spent nonces lead with their stamp, so new ones append at the tree's right edge and pruning
-- deletes a prefix; a replay lookup knows the stamp (it is the nonce's first 8 bytes).
CREATE TABLE used_nonces_v2 (
    stamp BIGINT NOT NULL,
    user_key BLOB NOT NULL,
    nonce BLOB NOT NULL,
    PRIMARY KEY (stamp, user_key, nonce)
) WITHOUT ROWID;
INSERT INTO used_nonces_v2 (stamp, user_key, nonce) SELECT stamp, user_key, nonce FROM used_nonces;
DROP TABLE used_nonces;
ALTER TABLE used_nonces_v2 RENAME TO used_nonces;

CREATE TABLE watches_v2 (
    user_key BLOB NOT NULL,
    channel_id BLOB NOT NULL,
    PRIMARY KEY (user_key, channel_id)
) WITHOUT ROWID;
INSERT INTO watches_v2 (user_key, channel_id) SELECT user_key, channel_id FROM watches;
DROP TABLE watches;
ALTER TABLE watches_v2 RENAME TO watches;
CREATE INDEX watches_by_channel ON watches (channel_id);

CREATE TABLE appointments_v2 (
    channel_id BLOB PRIMARY KEY,
    party_a BLOB NOT NULL,
    party_b BLOB NOT NULL,
    salt BLOB NOT NULL,
    version BIGINT NOT NULL,
    snapshot BLOB NOT NULL,
    stored_height BIGINT NOT NULL
) WITHOUT ROWID;
INSERT INTO appointments_v2 SELECT channel_id, party_a, party_b, salt, version, snapshot,
    stored_height FROM appointments;
DROP TABLE appointments;
ALTER TABLE appointments_v2 RENAME TO appointments;
