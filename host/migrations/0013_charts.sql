-- A link may measure a chart's measure over its view's rows, maybe for one of
-- the chart's categories; the chart's id, kind and name as linked, and which
-- measure and category.
ALTER TABLE metric_links ADD COLUMN chart_id TEXT;
ALTER TABLE metric_links ADD COLUMN chart_kind TEXT;
ALTER TABLE metric_links ADD COLUMN chart_name TEXT;
ALTER TABLE metric_links ADD COLUMN chart_measure TEXT;
ALTER TABLE metric_links ADD COLUMN chart_category TEXT;
