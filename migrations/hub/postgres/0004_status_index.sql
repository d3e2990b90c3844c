-- Scans page through the channels of one phase in id order (collateral, the guard).
CREATE INDEX channels_status_id ON channels (status, id);
