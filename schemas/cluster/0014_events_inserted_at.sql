-- inserted_at on the cluster layout: the _local shards and the Distributed
-- table over them (see migrations/0014_events_inserted_at.sql).
ALTER TABLE events_local ON CLUSTER '{cluster}' ADD COLUMN inserted_at DateTime DEFAULT now() AFTER raw;
ALTER TABLE events ON CLUSTER '{cluster}' ADD COLUMN inserted_at DateTime DEFAULT now() AFTER raw;
