-- The nonce of the tower's pending challenge, so a retry replaces it at that nonce with a
-- higher fee instead of queueing a new transaction behind it.
ALTER TABLE responses ADD COLUMN tx_nonce BIGINT;
