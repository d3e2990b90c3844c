-- Spent nonces keyed by their stamp first, so new ones land at the index's right edge and
-- pruning deletes a prefix; a replay lookup knows the stamp (it is the nonce's first 8 bytes).
ALTER TABLE used_nonces DROP CONSTRAINT used_nonces_pkey;
DROP INDEX used_nonces_by_stamp;
ALTER TABLE used_nonces ADD PRIMARY KEY (stamp, user_key, nonce);
