-- The sender a requester chose for a message (a campaign's own "from"),
-- as JSON {"from", "fromName", "replyTo"}; empty: the template's. Kept
-- with the message so a retry, or a message held for quiet hours, goes
-- out from the same sender as it would have at once.
ALTER TABLE messages ADD COLUMN sender TEXT NOT NULL DEFAULT '';
