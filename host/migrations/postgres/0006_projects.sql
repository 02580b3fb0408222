-- SQLite's migration 0010: Projects share the Key Results' table.
ALTER TABLE key_results ADD COLUMN kind TEXT NOT NULL DEFAULT 'key-result'
    CHECK (kind IN ('key-result', 'project'));
ALTER TABLE key_results ADD COLUMN parent_id BIGINT
    REFERENCES key_results (id) ON DELETE SET NULL;
ALTER TABLE key_results ADD COLUMN due_date TEXT;
CREATE INDEX key_results_by_organization_and_kind ON key_results (organization_id, kind);
