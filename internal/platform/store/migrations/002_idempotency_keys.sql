-- Answers to API requests sent with an Idempotency-Key, replayed when the
-- same request is retried. status 0 marks a request still being handled.
CREATE TABLE idempotency_keys (
    tenant_id    TEXT   NOT NULL,
    idem_key     TEXT   NOT NULL,
    fingerprint  TEXT   NOT NULL,
    status       INTEGER NOT NULL,
    content_type TEXT   NOT NULL DEFAULT '',
    location     TEXT   NOT NULL DEFAULT '',
    body         {{BLOB}},
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
