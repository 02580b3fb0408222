-- SQLite's migration 0012: back-filled runs.
ALTER TABLE sync_runs ADD COLUMN backfilled BIGINT NOT NULL DEFAULT 0;
