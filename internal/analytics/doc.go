// Package analytics stores every event of the platform and answers count
// queries over them per tenant, subject and time bucket.
//
// Owns: the tables analytics_events (one row per event id: tenant, subject,
// time, correlation, source, payload) and analytics_event_counts (events per
// tenant, subject and hour, kept in the same transaction as the raw rows, so
// the counts always equal the stored events). Queries read the rollup only:
// counting raw rows by subject and day takes seconds over a million rows on
// SQLite, the rollup answers in milliseconds. Day counts are summed from the
// hours, in UTC.
//
// Storage: the Store interface, implemented here by SQLStore on the
// platform's store (SQLite or PostgreSQL, same SQL). In embedded mode the app
// opens a separate SQLite file, analytics.db, for it, so that ingestion does
// not queue behind the main database's single writer; on PostgreSQL it is
// the main database. A ClickHouse store can replace it behind Store.
//
// Publishes: nothing.
//
// Consumers: ANALYTICS_INGEST_CONSUMER (ConsumerName), unfiltered: every
// subject of the event stream. Ingest.Handle commits events in groups (one
// writer, batches of whatever queued during the previous commit, up to
// MaxBatch), and acknowledges an event only once its batch has committed.
// Redeliveries and replays are harmless: an event id is stored and counted
// once.
//
// HTTP: GET /api/v1/analytics/events/counts?from=&to=&interval=hour|day&subject=
// (see HTTP).
package analytics
