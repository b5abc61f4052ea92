-- A thread is the conversation with one address on one channel: every
-- inbound message from that address joins it, and a new one reopens it.
-- address is the other side's, as the provider gave it (email addresses
-- lower-cased), so a message from an address that is no contact yet still
-- has a thread; contact_id is filled in once one matches.
CREATE TABLE inbox_threads (
    tenant_id       TEXT   NOT NULL,
    id              TEXT   NOT NULL,
    channel         TEXT   NOT NULL,
    address         TEXT   NOT NULL,
    contact_id      TEXT   NOT NULL DEFAULT '',
    subject         TEXT   NOT NULL DEFAULT '',
    status          TEXT   NOT NULL,
    assignee_id     TEXT   NOT NULL DEFAULT '',
    messages        BIGINT NOT NULL DEFAULT 0,
    replies         BIGINT NOT NULL DEFAULT 0,
    last_message_at BIGINT NOT NULL,
    -- The response deadline (SLA) of the contact's oldest unanswered
    -- message: when it falls due, when to warn, which kind, and how far it
    -- went (0 due, 1 warned, 2 breached). NULL while nothing waits.
    response_due_at  BIGINT,
    response_warn_at BIGINT,
    response_kind    TEXT    NOT NULL DEFAULT '',
    sla_state        INTEGER NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX inbox_threads_address ON inbox_threads (tenant_id, channel, address);
-- The inbox list: most recent activity first.
CREATE INDEX inbox_threads_recent ON inbox_threads (tenant_id, last_message_at, id);
CREATE INDEX inbox_threads_contact ON inbox_threads (tenant_id, contact_id);
-- The sweep for deadlines whose timers were lost.
CREATE INDEX inbox_threads_due ON inbox_threads (response_due_at) WHERE response_due_at IS NOT NULL;

-- One row per message of a thread. The provider's id is unique per channel,
-- so a provider's retry or a redelivered event adds nothing. An agent's
-- reply (direction out) carries the id of the pipeline message that sends
-- it as its external_id, and its author.
CREATE TABLE inbox_messages (
    tenant_id   TEXT   NOT NULL,
    id          TEXT   NOT NULL,
    thread_id   TEXT   NOT NULL,
    direction   TEXT   NOT NULL,
    channel     TEXT   NOT NULL,
    provider    TEXT   NOT NULL,
    external_id TEXT   NOT NULL,
    sender      TEXT   NOT NULL,
    recipient   TEXT   NOT NULL,
    subject     TEXT   NOT NULL DEFAULT '',
    text        TEXT   NOT NULL DEFAULT '',
    html        TEXT   NOT NULL DEFAULT '',
    in_reply_to TEXT   NOT NULL DEFAULT '',
    author_id   TEXT   NOT NULL DEFAULT '',
    received_at BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX inbox_messages_external ON inbox_messages (tenant_id, channel, external_id);
CREATE INDEX inbox_messages_thread ON inbox_messages (tenant_id, thread_id, received_at, id);
