-- A collateral job either deposits (the hub tops a channel up) or reclaims (the hub withdraws
-- idle collateral back to its account); still at most one live job per channel.
ALTER TABLE collateral_jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'deposit';
