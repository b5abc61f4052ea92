-- "consumer X processed event Y": written in the same transaction as the
-- handler's effect, so a redelivered event changes nothing.
CREATE TABLE processed_events (
    consumer     TEXT   NOT NULL,
    event_id     TEXT   NOT NULL,
    processed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX processed_events_at ON processed_events (processed_at);
