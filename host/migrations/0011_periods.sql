-- A Key Result's or Project's period (calendar days, YYYY-MM-DD, both
-- included), and the date column of its link's view the period applies to.
ALTER TABLE key_results ADD COLUMN period_start TEXT;
ALTER TABLE key_results ADD COLUMN period_end TEXT;
ALTER TABLE metric_links ADD COLUMN period_column TEXT;
