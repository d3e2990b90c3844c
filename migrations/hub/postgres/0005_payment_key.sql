-- A payment is its payee's invoice: keyed by (payee, hashlock), not by the hashlock alone,
-- which anyone can copy into an invoice of their own (a squat would make the real invoice
-- unpayable through this hub).
ALTER TABLE payments DROP CONSTRAINT payments_pkey;
ALTER TABLE payments ADD PRIMARY KEY (payee, hashlock);
CREATE INDEX payments_hashlock ON payments (hashlock);
CREATE INDEX payments_channel_in ON payments (channel_in, hashlock);
CREATE INDEX payments_channel_out ON payments (channel_out, hashlock);
ALTER TABLE payment_events ADD COLUMN payee BYTEA;
UPDATE payment_events e SET payee = p.payee FROM payments p WHERE p.hashlock = e.hashlock;
CREATE INDEX payment_events_payment ON payment_events (payee, hashlock);
