-- A sync's query text is kept once per distinct query, not once per run: a
-- link's query is the same hour after hour. Runs from before this version move
-- their text here too.
CREATE TABLE sync_queries (
    id INTEGER PRIMARY KEY,
    text TEXT NOT NULL UNIQUE
);
ALTER TABLE sync_runs ADD COLUMN query_id INTEGER REFERENCES sync_queries (id);
INSERT OR IGNORE INTO sync_queries (text)
    SELECT DISTINCT query FROM sync_runs WHERE query IS NOT NULL;
UPDATE sync_runs
    SET query_id = (SELECT q.id FROM sync_queries q WHERE q.text = sync_runs.query),
        query = NULL
    WHERE query IS NOT NULL;
-- The retention sweep finds old runs per link by time.
CREATE INDEX sync_runs_by_link_and_time ON sync_runs (key_result_id, started_at);
