-- Several hub processes on one Postgres: which process holds each client's session, and which
-- processes are alive (a heartbeat), so a payment can be routed to the process that holds its
-- payee and settled by the one that holds its payer. A SIGKILLed process stops its heartbeat,
-- and its presences stop counting.
CREATE TABLE hub_processes (
    id TEXT PRIMARY KEY,
    alive_ms BIGINT NOT NULL
);

CREATE TABLE client_presence (
    client BYTEA PRIMARY KEY,
    process TEXT NOT NULL,
    session BIGINT NOT NULL
);
