-- The highest version this wallet has signed on each channel, and whether that state was final:
-- written before the signature leaves, so no other state is ever signed at or below it (a
-- rejected or unanswered proposal burns its version), and nothing is signed after a Finalize.
ALTER TABLE channels ADD COLUMN signed_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE channels ADD COLUMN signed_final INTEGER NOT NULL DEFAULT 0;
