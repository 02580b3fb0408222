-- Host processes running a scheduler, each renewing its heartbeat while it
-- runs, so operators see which hosts share the database, which are alive and
-- what each is syncing. `id` is the process's lease id, the owner its claims
-- record.
CREATE TABLE hosts (
    id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    pid INTEGER NOT NULL,
    version TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    lease_seconds INTEGER NOT NULL
);

-- A throttle (Retry-After) holds for the whole connection: Dataverse limits the
-- user, not the link, so no host sends for the connection before this time.
ALTER TABLE connections ADD COLUMN throttled_until INTEGER;
