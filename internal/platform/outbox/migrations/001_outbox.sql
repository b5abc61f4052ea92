-- Events written in the same transaction as the state change they describe.
-- The relay publishes unpublished rows in seq order and stamps published_at;
-- published rows are kept for a while so an unclean shutdown can republish
-- them (the stream drops the ones it already has by Nats-Msg-Id).
CREATE TABLE outbox (
    seq          {{SERIAL_PK}},
    event_id     TEXT    NOT NULL UNIQUE,
    subject      TEXT    NOT NULL,
    payload      {{BLOB}} NOT NULL,
    created_at   BIGINT  NOT NULL,
    published_at BIGINT
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL;
