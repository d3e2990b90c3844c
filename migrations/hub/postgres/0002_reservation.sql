-- The hub's own proposal in flight on a channel (version reservation). Written in the channel's
-- row-locked transaction before the hub's signature leaves the process, so that no other hub
-- process can sign a different state at the same version. `pending_snapshot` holds the proposed
-- state with the hub's signature (the client's is left zero); `pending_until` is the Unix time in
-- milliseconds until which the proposer still waits for the client's answer (0: gave up).
ALTER TABLE channels ADD COLUMN pending_version BIGINT;
ALTER TABLE channels ADD COLUMN pending_snapshot BYTEA;
ALTER TABLE channels ADD COLUMN pending_until BIGINT;
