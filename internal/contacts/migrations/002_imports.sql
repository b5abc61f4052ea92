-- Bulk imports. Progress (done, created, updated, failed) commits in the
-- same transaction as the rows it counts, so a resumed import continues
-- exactly after the last committed row. spool is the local file the
-- upload was streamed to ('' when a tool imports a file in place).
CREATE TABLE contact_imports (
    tenant_id   TEXT   NOT NULL,
    id          TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    format      TEXT   NOT NULL,
    mode        TEXT   NOT NULL,
    total       BIGINT NOT NULL DEFAULT -1,
    done        BIGINT NOT NULL DEFAULT 0,
    created     BIGINT NOT NULL DEFAULT 0,
    updated     BIGINT NOT NULL DEFAULT 0,
    failed      BIGINT NOT NULL DEFAULT 0,
    error       TEXT   NOT NULL DEFAULT '',
    spool       TEXT   NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    finished_at BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX contact_imports_status ON contact_imports (status);

-- Rows an import refused, with the reason. The first maxImportErrors are
-- kept; failed counts them all.
CREATE TABLE contact_import_errors (
    tenant_id TEXT   NOT NULL,
    import_id TEXT   NOT NULL,
    row_num   BIGINT NOT NULL,
    reason    TEXT   NOT NULL,
    PRIMARY KEY (tenant_id, import_id, row_num)
);
