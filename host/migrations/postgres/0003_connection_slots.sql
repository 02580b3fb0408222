-- A connection's concurrency limit, counted across every host sharing the
-- database: a sync holds one of the connection's slots (leased, renewed while
-- it runs) besides its host's own limit.
CREATE TABLE connection_slots (
    connection_id TEXT NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    slot BIGINT NOT NULL,
    owner TEXT,
    expires_at BIGINT,
    PRIMARY KEY (connection_id, slot)
);
