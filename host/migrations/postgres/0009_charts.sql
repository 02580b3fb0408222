-- SQLite's migration 0013: links to a chart's measure.
ALTER TABLE metric_links ADD COLUMN chart_id TEXT;
ALTER TABLE metric_links ADD COLUMN chart_kind TEXT;
ALTER TABLE metric_links ADD COLUMN chart_name TEXT;
ALTER TABLE metric_links ADD COLUMN chart_measure TEXT;
ALTER TABLE metric_links ADD COLUMN chart_category TEXT;
