-- The text of a message written by hand (an agent's reply from the inbox),
-- sent as is instead of a template: kept on the row, so a retry or a crash
-- recovery sends exactly what was written. Empty for templated messages.
ALTER TABLE messages ADD COLUMN body TEXT NOT NULL DEFAULT '';
