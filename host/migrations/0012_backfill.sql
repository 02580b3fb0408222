-- Runs computed after the fact when an item is linked: points of its history
-- back-filled from a creation date. Retention keeps them, being the only
-- record of that time.
ALTER TABLE sync_runs ADD COLUMN backfilled INTEGER NOT NULL DEFAULT 0;
