-- Which host process holds a link's claim and runs a sync: on start, the
-- scheduler recovers only the claims of processes that are gone, never those of
-- a `kr sync` still running beside it. Rows from before this version have no
-- owner and count as gone.
ALTER TABLE metric_links ADD COLUMN running_owner TEXT;
ALTER TABLE sync_runs ADD COLUMN owner TEXT;
