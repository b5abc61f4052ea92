-- When the recipient unsubscribed through the message's link, set once: the
-- message's pipeline.message.unsubscribed is published when it is set.
ALTER TABLE messages ADD COLUMN unsubscribed_at BIGINT;
