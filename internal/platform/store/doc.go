// Package store opens the relational database (SQLite embedded, PostgreSQL
// in production), applies each module's embedded migrations, runs
// transactions, and holds the few dialect differences in one place.
//
// Conventions every module's SQL follows so one statement serves both engines:
//   - placeholders are $1, $2, ... (modernc.org/sqlite binds them by number, as
//     PostgreSQL does);
//   - ids are UUIDv7 text; times are BIGINT Unix milliseconds (UTC), which
//     compare, index and bucket identically on both engines;
//   - JSON columns are declared {{JSON}} in migrations (TEXT on SQLite, JSONB
//     on PostgreSQL) and read with `col ->> 'key'`;
//   - upserts use ON CONFLICT, and RETURNING is available on both.
//
// SQLite runs in WAL mode with one writer connection (BEGIN IMMEDIATE, so
// writers queue instead of failing with SQLITE_BUSY) and a pool of readers.
package store
