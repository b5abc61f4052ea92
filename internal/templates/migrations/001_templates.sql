-- Templates and their immutable versions: an update adds a version, so a
-- campaign that started on version 3 keeps sending version 3.
CREATE TABLE templates (
    tenant_id    TEXT   NOT NULL,
    id           TEXT   NOT NULL,
    name         TEXT   NOT NULL,
    channel      TEXT   NOT NULL,
    status       TEXT   NOT NULL,
    version      BIGINT NOT NULL,
    hsm_status   TEXT   NOT NULL DEFAULT '',
    hsm_name     TEXT   NOT NULL DEFAULT '',
    hsm_language TEXT   NOT NULL DEFAULT '',
    hsm_category TEXT   NOT NULL DEFAULT '',
    hsm_reason   TEXT   NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX templates_name ON templates (tenant_id, name);
CREATE INDEX templates_hsm ON templates (tenant_id, hsm_name, hsm_language);

CREATE TABLE template_versions (
    tenant_id   TEXT   NOT NULL,
    template_id TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    content     TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, template_id, version)
);
