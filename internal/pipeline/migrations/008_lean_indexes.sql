-- Every index on messages is written on each status change that touches
-- its columns, a few times per message sent. messages_external
-- (provider, external_id) answered no query: reports find a message by
-- (tenant_id, external_id), which messages_tenant_external indexes. And
-- only held messages are ever looked up by send_after, so the index of
-- held messages holds those alone instead of every message by status.
DROP INDEX messages_external;
DROP INDEX messages_held;
CREATE INDEX messages_held ON messages (send_after) WHERE status = 'held';
