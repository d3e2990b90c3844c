-- A payment is its payee's invoice: keyed by (payee, hashlock), not by the hashlock alone,
-- which anyone can copy into an invoice of their own (a squat would make the real invoice
-- unpayable through this hub). SQLite cannot change a primary key in place: rebuild.
CREATE TABLE payments_by_payee (
    hashlock BLOB NOT NULL,
    payer BLOB NOT NULL,
    payee BLOB NOT NULL,
    channel_in BLOB NOT NULL,
    channel_out BLOB,
    amount INTEGER NOT NULL,
    amount_in INTEGER NOT NULL,
    expiry_in INTEGER NOT NULL,
    expiry_out INTEGER,
    status TEXT NOT NULL,
    reason TEXT,
    secret BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (payee, hashlock)
);
INSERT INTO payments_by_payee SELECT hashlock, payer, payee, channel_in, channel_out, amount,
    amount_in, expiry_in, expiry_out, status, reason, secret, created_at, updated_at FROM payments;
DROP TABLE payments;
ALTER TABLE payments_by_payee RENAME TO payments;
CREATE INDEX payments_status ON payments (status);
CREATE INDEX payments_hashlock ON payments (hashlock);
CREATE INDEX payments_channel_in ON payments (channel_in, hashlock);
CREATE INDEX payments_channel_out ON payments (channel_out, hashlock);
ALTER TABLE payment_events ADD COLUMN payee BLOB;
UPDATE payment_events SET payee = (SELECT p.payee FROM payments p WHERE p.hashlock = payment_events.hashlock);
CREATE INDEX payment_events_payment ON payment_events (payee, hashlock);
