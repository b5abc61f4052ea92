-- The outbox's seq becomes a plain rowid (INTEGER PRIMARY KEY without
-- AUTOINCREMENT). AUTOINCREMENT rewrote the sqlite_sequence table at the end
-- of every INSERT statement, and the outbox inserts one row a statement:
-- about 4% of the CPU of the event path (docs/benchmarks.md). Without it
-- SQLite gives a new row max(seq) + 1, which only stays above every seq
-- ever used while the newest row is kept: the relay's prune never deletes
-- it (tracker.go).
CREATE TABLE outbox_rowid (
    seq        INTEGER PRIMARY KEY,
    event_id   TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    created_at BIGINT  NOT NULL
);
INSERT INTO outbox_rowid (seq, event_id, subject, payload, created_at)
    SELECT seq, event_id, subject, payload, created_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_rowid RENAME TO outbox;
-- A table pruned empty would number its next row 1, below the cursor: with
-- no row left, every event was published, and the cursor starts over.
UPDATE outbox_relay SET published_seq = 0 WHERE NOT EXISTS (SELECT 1 FROM outbox);
