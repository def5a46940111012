package clickhouse

// InsertChunk is how many rows the events writer hands the driver at a time.
const InsertChunk = insertChunk
