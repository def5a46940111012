-- Every alert carries the ClickHouse query that pivots to its evidence.
-- (No IF NOT EXISTS: 18.16 lacks it; migrations run once by version.)
ALTER TABLE alerts ADD COLUMN query String AFTER baseline;
