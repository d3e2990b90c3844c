-- Each spent nonce's timestamp (its first 8 bytes, unix seconds). Requests are accepted only
-- within a window of the tower's clock, so nonces older than the window can be forgotten.
-- Rows from before this change get 0 and go at the first prune: their random leading bytes
-- would never pass the time check anyway.
ALTER TABLE used_nonces ADD COLUMN stamp BIGINT NOT NULL DEFAULT 0;
CREATE INDEX used_nonces_by_stamp ON used_nonces (stamp);
