-- A message has an external id only once a provider took it; the lookup by
-- external id never asks for an empty one. Indexing only the messages that
-- have one spares every claim an index entry that the outcome's record
-- then deleted (and every blocked message one it kept).
DROP INDEX messages_tenant_external;
CREATE INDEX messages_tenant_external ON messages (tenant_id, external_id) WHERE external_id <> '';
