-- The highest version either side is known to have signed on the channel (the hub's own
-- proposals, the client's proposals it saw with a valid signature). Every new state goes above
-- it: a signature that left is never taken back, so no version is ever signed twice, by any hub
-- process, whatever the client answered.
ALTER TABLE channels ADD COLUMN floor_version BIGINT NOT NULL DEFAULT 0;
UPDATE channels SET floor_version = COALESCE(pending_version, version);
