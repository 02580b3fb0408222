-- SQLite's migration 0008: the hosts sharing the database, with heartbeats,
-- and a connection's throttle, which every host honours.
CREATE TABLE hosts (
    id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    pid BIGINT NOT NULL,
    version TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    lease_seconds BIGINT NOT NULL
);

ALTER TABLE connections ADD COLUMN throttled_until BIGINT;
