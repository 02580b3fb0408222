-- SQLite's migration 0011: periods, and the column a link applies them to.
ALTER TABLE key_results ADD COLUMN period_start TEXT;
ALTER TABLE key_results ADD COLUMN period_end TEXT;
ALTER TABLE metric_links ADD COLUMN period_column TEXT;
