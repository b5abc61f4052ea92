-- Events written in the same transaction as the state change they describe.
-- SQLite has one writer, so seqs are assigned and committed in the same
-- order: "published" is one cursor (the highest seq the bus acknowledged)
-- instead of a stamp on every row, which spares every event an index update.
-- Published rows are kept for a while so an unclean shutdown can republish
-- them (the stream drops the ones it already has by Nats-Msg-Id).
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id   TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    created_at BIGINT  NOT NULL
);
CREATE TABLE outbox_relay (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    published_seq BIGINT NOT NULL
);
INSERT INTO outbox_relay (id, published_seq) VALUES (1, 0);
