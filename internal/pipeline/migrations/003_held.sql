-- Messages held for quiet hours wait in status held until send_after.
ALTER TABLE messages ADD COLUMN send_after BIGINT;
CREATE INDEX messages_held ON messages (status, send_after);
