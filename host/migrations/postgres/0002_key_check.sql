-- A value sealed with the key of the first host: every host sharing the
-- database must open it, or it refuses to start (its key would fail to open
-- every secret, and mark every connection as needing sign-in).
CREATE TABLE key_check (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    sealed TEXT NOT NULL
);
