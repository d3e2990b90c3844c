-- The event log: every event the wallet announces that records a change of its money or
-- channels, stored before it is announced, so that an app that was not listening catches up
-- from the last `seq` it handled. AUTOINCREMENT: a `seq` is never handed out twice, even once
-- the oldest rows are pruned (the wallet keeps the newest 100,000).
CREATE TABLE events (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Unix seconds
    at    INTEGER NOT NULL,
    -- the WalletEvent as JSON
    event TEXT NOT NULL
);
