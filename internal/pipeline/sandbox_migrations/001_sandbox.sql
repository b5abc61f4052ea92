-- What the sandbox providers "sent", for inspection. In embedded mode the
-- table lives in a file of its own (sandbox.db): storing every body would
-- otherwise take the main database's single writer from the pipeline.
-- IF NOT EXISTS: on PostgreSQL the pipeline's first migration made it.
CREATE TABLE IF NOT EXISTS sandbox_messages (
    tenant_id   TEXT   NOT NULL,
    id          TEXT   NOT NULL,
    message_id  TEXT   NOT NULL,
    channel     TEXT   NOT NULL,
    recipient   TEXT   NOT NULL,
    sender      TEXT   NOT NULL DEFAULT '',
    subject     TEXT   NOT NULL DEFAULT '',
    html        TEXT   NOT NULL DEFAULT '',
    text        TEXT   NOT NULL DEFAULT '',
    headers     TEXT   NOT NULL DEFAULT '{}',
    template    TEXT   NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS sandbox_messages_message ON sandbox_messages (tenant_id, message_id);
