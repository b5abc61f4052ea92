-- The text of a message written by hand (an agent's reply from the inbox),
-- sent as is instead of a template: kept on the row, so a retry or a crash
-- recovery sends exactly what was written. Empty for templated messages.
-- in_reply_to is the Message-ID of the contact's email such a reply answers.
ALTER TABLE messages ADD COLUMN body TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN in_reply_to TEXT NOT NULL DEFAULT '';
