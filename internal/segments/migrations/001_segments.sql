-- Segment definitions. rules is the canonical JSON of the rule tree.
CREATE TABLE segments (
    tenant_id         TEXT   NOT NULL,
    id                TEXT   NOT NULL,
    name              TEXT   NOT NULL,
    description       TEXT   NOT NULL DEFAULT '',
    rules             TEXT   NOT NULL,
    version           BIGINT NOT NULL,
    member_count      BIGINT NOT NULL DEFAULT 0,
    evaluated_at      BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX segments_name ON segments (tenant_id, name);

-- Raised in every transaction that changes a tenant's segment definitions:
-- live evaluation caches compiled rules per tenant and reloads them when
-- this moves, which works across instances.
CREATE TABLE segment_generations (
    tenant_id  TEXT   NOT NULL PRIMARY KEY,
    generation BIGINT NOT NULL
);

-- The module's own copy of every contact, in the shape rules compile to
-- SQL against (internal/segments/rule). Kept from contact snapshots by
-- SEGMENTS_CONTACT_CONSUMER, newest version wins; a deleted contact stays
-- as a tombstone (deleted = 1, personal fields cleared) so that an older
-- event arriving late cannot bring it back.
CREATE TABLE segment_contacts (
    tenant_id        TEXT    NOT NULL,
    contact_id       TEXT    NOT NULL,
    version          BIGINT  NOT NULL,
    deleted          INTEGER NOT NULL DEFAULT 0,
    email            TEXT    NOT NULL DEFAULT '',
    phone            TEXT    NOT NULL DEFAULT '',
    first_name       TEXT    NOT NULL DEFAULT '',
    last_name        TEXT    NOT NULL DEFAULT '',
    locale           TEXT    NOT NULL DEFAULT '',
    time_zone        TEXT    NOT NULL DEFAULT '',
    attributes       {{JSON}} NOT NULL,
    tags             {{JSON}} NOT NULL,
    consent_email    INTEGER NOT NULL DEFAULT 0,
    consent_sms      INTEGER NOT NULL DEFAULT 0,
    consent_whatsapp INTEGER NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, contact_id)
);

-- Membership decisions. A row records the latest decision for a contact
-- and segment and the contact version it was made on; a decision on an
-- older version never overwrites it. Rows of contacts that left stay with
-- is_member = 0 for the same reason.
CREATE TABLE segment_members (
    tenant_id       TEXT    NOT NULL,
    segment_id      TEXT    NOT NULL,
    contact_id      TEXT    NOT NULL,
    contact_version BIGINT  NOT NULL,
    is_member       INTEGER NOT NULL,
    changed_at      BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, segment_id, contact_id)
);
CREATE INDEX segment_members_contact ON segment_members (tenant_id, contact_id);
