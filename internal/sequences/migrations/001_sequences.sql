-- A sequence is a fixed series of steps for one contact at a time: messages
-- sent through the pipeline and manual steps (a call, a task) a person
-- does, each after a delay. steps holds the definition (JSON array).
CREATE TABLE sequences (
    tenant_id     TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    owner_id      TEXT    NOT NULL DEFAULT '',
    exit_on_reply INTEGER NOT NULL DEFAULT 1,
    steps         {{JSON}} NOT NULL,
    status        TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX sequences_name ON sequences (tenant_id, name);
CREATE INDEX sequences_list ON sequences (tenant_id, created_at, id);

-- One contact going through one sequence. step is the index of the current
-- step; due_at is when it runs (NULL while a manual step waits for a
-- person, and once the enrollment ended). status: active (a step is due),
-- waiting (a manual step), completed, exited (with exit_reason).
CREATE TABLE sequence_enrollments (
    tenant_id   TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    sequence_id TEXT    NOT NULL,
    contact_id  TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    step        INTEGER NOT NULL DEFAULT 0,
    due_at      BIGINT,
    enrolled_by TEXT    NOT NULL DEFAULT '',
    exit_reason TEXT    NOT NULL DEFAULT '',
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    ended_at    BIGINT,
    PRIMARY KEY (tenant_id, id)
);
-- A contact is in a sequence at most once at a time.
CREATE UNIQUE INDEX sequence_enrollments_current ON sequence_enrollments (tenant_id, sequence_id, contact_id)
    WHERE status IN ('active', 'waiting');
CREATE INDEX sequence_enrollments_contact ON sequence_enrollments (tenant_id, contact_id, status);
CREATE INDEX sequence_enrollments_list ON sequence_enrollments (tenant_id, sequence_id, id);
-- The sweep for steps whose timers were lost, or fell due while paused.
CREATE INDEX sequence_enrollments_due ON sequence_enrollments (due_at) WHERE due_at IS NOT NULL;
