// Package schemas owns tokenwatch's data contracts: the normalized token-usage
// Event, the Alert, the Kafka topic names and keys, the dead-letter record, and
// the versioned ClickHouse migrations. It does no I/O and imports nothing from
// the pipeline stages; every stage imports it.
package schemas
