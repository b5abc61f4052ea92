-- Provider reports already published, by the provider's own key (SendGrid's
-- sg_event_id, Twilio's message sid and status, WhatsApp's message id and
-- status): providers retry a callback until it is acknowledged, and each
-- report must become one event.
CREATE TABLE webhook_receipts (
    tenant_id   TEXT   NOT NULL,
    provider    TEXT   NOT NULL,
    receipt_key TEXT   NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, provider, receipt_key)
);
CREATE INDEX webhook_receipts_received ON webhook_receipts (received_at);
