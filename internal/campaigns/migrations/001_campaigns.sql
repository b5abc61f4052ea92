-- Campaigns: one row each, with the fan-out's progress. The audience is
-- frozen into campaign_recipients when the campaign starts; the runner
-- queues them in (send_at, contact_id) order and commits its cursor with
-- the queued events, so a restart resumes exactly where it stopped.
CREATE TABLE campaigns (
    tenant_id           TEXT    NOT NULL,
    id                  TEXT    NOT NULL,
    name                TEXT    NOT NULL,
    channel             TEXT    NOT NULL,
    template_id         TEXT    NOT NULL,
    template_version    BIGINT  NOT NULL DEFAULT 0,
    segment_ids         TEXT    NOT NULL,
    exclude_segment_ids TEXT    NOT NULL DEFAULT '[]',
    sender              TEXT    NOT NULL DEFAULT '{}',
    rate                DOUBLE PRECISION NOT NULL DEFAULT 0,
    status              TEXT    NOT NULL,
    schedule            TEXT,
    start_at            BIGINT,
    audience_ready      INTEGER NOT NULL DEFAULT 0,
    recipients          BIGINT  NOT NULL DEFAULT 0,
    queued              BIGINT  NOT NULL DEFAULT 0,
    cursor_send_at      BIGINT  NOT NULL DEFAULT -1,
    cursor_contact      TEXT    NOT NULL DEFAULT '',
    lease_owner         TEXT    NOT NULL DEFAULT '',
    lease_until         BIGINT  NOT NULL DEFAULT 0,
    version             BIGINT  NOT NULL,
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL,
    started_at          BIGINT,
    completed_at        BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX campaigns_status ON campaigns (status, start_at);
CREATE INDEX campaigns_list ON campaigns (tenant_id, created_at, id);

-- The audience snapshot. send_at is 0 unless the campaign sends at each
-- recipient's local time.
CREATE TABLE campaign_recipients (
    tenant_id   TEXT   NOT NULL,
    campaign_id TEXT   NOT NULL,
    contact_id  TEXT   NOT NULL,
    send_at     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, campaign_id, contact_id)
);
CREATE INDEX campaign_recipients_order ON campaign_recipients (tenant_id, campaign_id, send_at, contact_id);

-- One row per message queued, written with its pipeline.message.queued
-- event. flags holds the statuses seen (bits in tracking.go), so each
-- status counts once however often its event is delivered.
CREATE TABLE campaign_messages (
    tenant_id   TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    campaign_id TEXT    NOT NULL,
    flags       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, message_id)
);

-- Live counters, kept by CAMPAIGNS_TRACKING_CONSUMER. settled counts
-- messages that left the pipeline's queue (held, sent or failed); final
-- those that reached a final state; the runner uses both.
CREATE TABLE campaign_stats (
    tenant_id      TEXT   NOT NULL,
    campaign_id    TEXT   NOT NULL,
    sent           BIGINT NOT NULL DEFAULT 0,
    delivered      BIGINT NOT NULL DEFAULT 0,
    opened         BIGINT NOT NULL DEFAULT 0,
    unique_opened  BIGINT NOT NULL DEFAULT 0,
    clicked        BIGINT NOT NULL DEFAULT 0,
    unique_clicked BIGINT NOT NULL DEFAULT 0,
    bounced        BIGINT NOT NULL DEFAULT 0,
    complained     BIGINT NOT NULL DEFAULT 0,
    unsubscribed   BIGINT NOT NULL DEFAULT 0,
    failed         BIGINT NOT NULL DEFAULT 0,
    skipped        BIGINT NOT NULL DEFAULT 0,
    held           BIGINT NOT NULL DEFAULT 0,
    settled        BIGINT NOT NULL DEFAULT 0,
    final          BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, campaign_id)
);

-- Per-minute counts for the report's timeline.
CREATE TABLE campaign_timeline (
    tenant_id   TEXT   NOT NULL,
    campaign_id TEXT   NOT NULL,
    minute      BIGINT NOT NULL,
    metric      TEXT   NOT NULL,
    count       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, campaign_id, minute, metric)
);
