-- Provider reports name a message by the provider's id only.
CREATE INDEX messages_tenant_external ON messages (tenant_id, external_id);
