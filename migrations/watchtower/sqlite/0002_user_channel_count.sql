-- Each user's number of watched channels, kept next to its quota and changed in the same
-- transaction as its watches, so admitting a new channel reads one row instead of counting.
ALTER TABLE users ADD COLUMN channels BIGINT NOT NULL DEFAULT 0;
UPDATE users SET channels = (SELECT COUNT(*) FROM watches w WHERE w.user_key = users.user_key);
