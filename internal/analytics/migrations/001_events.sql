-- Raw events, one row per event id: the record every other analytics table
-- can be rebuilt from. The id is a UUIDv7, so new rows land at the end of the
-- primary-key index. No secondary index: queries read the rollups, and every
-- extra index costs ingestion throughput.
CREATE TABLE analytics_events (
    id             TEXT   NOT NULL PRIMARY KEY,
    tenant_id      TEXT   NOT NULL,
    subject        TEXT   NOT NULL,
    occurred_at    BIGINT NOT NULL,
    correlation_id TEXT   NOT NULL,
    source         TEXT   NOT NULL,
    data           {{JSON}} NOT NULL
);

-- Hourly counts per tenant and subject, maintained in the transaction that
-- inserts the raw rows. bucket is the hour's start in Unix ms (UTC); day
-- counts are summed from it.
CREATE TABLE analytics_event_counts (
    tenant_id TEXT   NOT NULL,
    subject   TEXT   NOT NULL,
    bucket    BIGINT NOT NULL,
    count     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, subject, bucket)
);
-- Dashboards ask for all subjects of a time range; the primary key serves
-- the exact-subject queries.
CREATE INDEX analytics_event_counts_time ON analytics_event_counts (tenant_id, bucket);
