-- One row per contact. Email and phone are NULL when absent, so the unique
-- indexes allow any number of contacts without one. An erased contact keeps
-- its row (an anonymous id that messages and analytics may still name) with
-- every personal field cleared and erased_at set.
CREATE TABLE contacts (
    tenant_id  TEXT   NOT NULL,
    id         TEXT   NOT NULL,
    email      TEXT,
    phone      TEXT,
    first_name TEXT   NOT NULL DEFAULT '',
    last_name  TEXT   NOT NULL DEFAULT '',
    locale     TEXT   NOT NULL DEFAULT '',
    time_zone  TEXT   NOT NULL DEFAULT '',
    attributes {{JSON}} NOT NULL,
    source     TEXT   NOT NULL DEFAULT '',
    version    BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    erased_at  BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX contacts_email ON contacts (tenant_id, email);
CREATE UNIQUE INDEX contacts_phone ON contacts (tenant_id, phone);

-- Tags in a table of their own: "contacts with tag X" is an index range on
-- both engines, with the same SQL.
CREATE TABLE contact_tags (
    tenant_id  TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    tag        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, contact_id, tag)
);
CREATE INDEX contact_tags_tag ON contact_tags (tenant_id, tag, contact_id);

-- The latest consent decision per channel, with what proves it.
CREATE TABLE contact_consents (
    tenant_id  TEXT    NOT NULL,
    contact_id TEXT    NOT NULL,
    channel    TEXT    NOT NULL,
    granted    INTEGER NOT NULL,
    source     TEXT    NOT NULL,
    proof      TEXT    NOT NULL DEFAULT '',
    decided_at BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, contact_id, channel)
);
CREATE INDEX contact_consents_channel ON contact_consents (tenant_id, channel, granted, contact_id);
