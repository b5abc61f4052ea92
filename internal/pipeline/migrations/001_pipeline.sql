-- One row per message: (source, recipient, channel, step) is unique, so no
-- redelivery, retry or crash can make a second message for the same send.
CREATE TABLE messages (
    tenant_id        TEXT    NOT NULL,
    id               TEXT    NOT NULL,
    source_type      TEXT    NOT NULL,
    source_id        TEXT    NOT NULL,
    step             TEXT    NOT NULL DEFAULT '',
    contact_id       TEXT    NOT NULL,
    channel          TEXT    NOT NULL,
    template_id      TEXT    NOT NULL DEFAULT '',
    template_version BIGINT  NOT NULL DEFAULT 0,
    campaign_name    TEXT    NOT NULL DEFAULT '',
    run_id           TEXT    NOT NULL DEFAULT '',
    recipient        TEXT    NOT NULL DEFAULT '',
    subject          TEXT    NOT NULL DEFAULT '',
    status           TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    provider         TEXT    NOT NULL DEFAULT '',
    external_id      TEXT    NOT NULL DEFAULT '',
    error_code       TEXT    NOT NULL DEFAULT '',
    error            TEXT    NOT NULL DEFAULT '',
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    sent_at          BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX messages_send_key ON messages (tenant_id, source_type, source_id, contact_id, channel, step);
CREATE INDEX messages_external ON messages (provider, external_id);
CREATE INDEX messages_contact ON messages (tenant_id, contact_id, created_at);

-- Addresses that must not be sent to on a channel: hard bounces,
-- complaints, unsubscribes, or an operator's decision.
CREATE TABLE suppressions (
    tenant_id  TEXT   NOT NULL,
    channel    TEXT   NOT NULL,
    address    TEXT   NOT NULL,
    reason     TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, channel, address)
);

-- What the sandbox providers "sent", for inspection.
CREATE TABLE sandbox_messages (
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
CREATE UNIQUE INDEX sandbox_messages_message ON sandbox_messages (tenant_id, message_id);
