-- Projects are linked, synced and shown like Key Results, so they share the
-- table (and with it links, runs, history, alerts and the scheduler's queue):
-- `kind` tells them apart, and only a Project has a parent Key Result and a
-- due date (a calendar date, YYYY-MM-DD).
ALTER TABLE key_results ADD COLUMN kind TEXT NOT NULL DEFAULT 'key-result'
    CHECK (kind IN ('key-result', 'project'));
ALTER TABLE key_results ADD COLUMN parent_id INTEGER
    REFERENCES key_results (id) ON DELETE SET NULL;
ALTER TABLE key_results ADD COLUMN due_date TEXT;
CREATE INDEX key_results_by_organization_and_kind ON key_results (organization_id, kind);
