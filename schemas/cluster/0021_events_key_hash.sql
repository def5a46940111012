-- key_hash on the cluster layout (see migrations/0021_events_key_hash.sql):
-- each shard's local table computes and stores it at insert. The Distributed
-- table names it as an ALIAS of the same expression, so the writer's lookup
-- can name it: a MATERIALIZED column there is sent with every INSERT, and
-- the shards refuse a value for a MATERIALIZED column. A Distributed table
-- may expand its ALIAS before it sends the query on, in which case the
-- shards hash the three strings rather than read the stored column: exact
-- either way, and bounded by tenant, integration and time as before. The
-- lookup's speed-up is measured on the single-server layout only.
ALTER TABLE events_local ON CLUSTER '{cluster}' ADD COLUMN key_hash UInt64 MATERIALIZED cityHash64(tenant, integration_id, event_id);
ALTER TABLE events ON CLUSTER '{cluster}' ADD COLUMN key_hash UInt64 ALIAS cityHash64(tenant, integration_id, event_id);
