-- shadow on the cluster layout: the _local shards first, then the
-- Distributed table over them (see migrations/0016_shadow.sql).
ALTER TABLE alerts_local ON CLUSTER '{cluster}' ADD COLUMN shadow UInt8 DEFAULT 0 AFTER purpose;
ALTER TABLE alerts ON CLUSTER '{cluster}' ADD COLUMN shadow UInt8 DEFAULT 0 AFTER purpose;
