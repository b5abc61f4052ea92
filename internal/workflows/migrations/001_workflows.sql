-- Workflows: one row each, pointing at its current definition version.
-- trigger_event and trigger_key (a tag, a segment id or a custom event
-- name) let the trigger consumer find the workflows an event starts with
-- one indexed read.
CREATE TABLE workflows (
    tenant_id     TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    status        TEXT   NOT NULL,
    version       BIGINT NOT NULL,
    trigger_event TEXT   NOT NULL,
    trigger_key   TEXT   NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX workflows_name ON workflows (tenant_id, name);
CREATE INDEX workflows_trigger ON workflows (tenant_id, trigger_event, status, trigger_key);
CREATE INDEX workflows_list ON workflows (tenant_id, created_at, id);

-- Every version of every definition, kept: runs finish on the version they
-- started with.
CREATE TABLE workflow_versions (
    tenant_id   TEXT   NOT NULL,
    workflow_id TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    definition  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, workflow_id, version)
);

-- One contact's run through one workflow version. step counts the nodes
-- entered; every change to a run is fenced on (step, status), so a timer, a
-- message event and the sweep racing to wake the same run advance it once.
-- trigger_event_id is unique per workflow: a redelivered trigger never
-- starts a second run.
CREATE TABLE workflow_runs (
    tenant_id        TEXT   NOT NULL,
    id               TEXT   NOT NULL,
    workflow_id      TEXT   NOT NULL,
    version          BIGINT NOT NULL,
    contact_id       TEXT   NOT NULL,
    status           TEXT   NOT NULL,
    node_id          TEXT   NOT NULL DEFAULT '',
    step             BIGINT NOT NULL DEFAULT 0,
    wait_kind        TEXT   NOT NULL DEFAULT '',
    wait_message_id  TEXT   NOT NULL DEFAULT '',
    wake_at          BIGINT,
    held_branch      TEXT   NOT NULL DEFAULT '',
    trigger_subject  TEXT   NOT NULL,
    trigger_event_id TEXT   NOT NULL,
    correlation_id   TEXT   NOT NULL DEFAULT '',
    goal_id          TEXT   NOT NULL DEFAULT '',
    reason           TEXT   NOT NULL DEFAULT '',
    started_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    ended_at         BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX workflow_runs_trigger ON workflow_runs (tenant_id, workflow_id, trigger_event_id);
CREATE INDEX workflow_runs_contact ON workflow_runs (tenant_id, contact_id, status);
CREATE INDEX workflow_runs_workflow ON workflow_runs (tenant_id, workflow_id, id);
CREATE INDEX workflow_runs_wake ON workflow_runs (status, wake_at);

-- Who has entered which workflow, for the re-entry policies: active_run is
-- the contact's run in progress (after_exit waits for it to end).
CREATE TABLE workflow_entries (
    tenant_id   TEXT   NOT NULL,
    workflow_id TEXT   NOT NULL,
    contact_id  TEXT   NOT NULL,
    active_run  TEXT,
    runs        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, workflow_id, contact_id)
);

-- The path of each run: one row per node entered. branch is empty while
-- the run waits in the node. message_flags records the delivered, opened
-- and clicked reports of the message a send node queued.
CREATE TABLE workflow_run_steps (
    tenant_id     TEXT    NOT NULL,
    run_id        TEXT    NOT NULL,
    step          BIGINT  NOT NULL,
    node_id       TEXT    NOT NULL,
    node_type     TEXT    NOT NULL,
    branch        TEXT    NOT NULL DEFAULT '',
    message_id    TEXT    NOT NULL DEFAULT '',
    message_flags INTEGER NOT NULL DEFAULT 0,
    entered_at    BIGINT  NOT NULL,
    left_at       BIGINT,
    PRIMARY KEY (tenant_id, run_id, step)
);

-- Per-node counts for the builder view: "entered", and one outcome per
-- branch taken out of the node (or "goal", "failed" for runs that ended
-- while in it). Kept in the transaction that moves the run.
CREATE TABLE workflow_node_stats (
    tenant_id   TEXT   NOT NULL,
    workflow_id TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    node_id     TEXT   NOT NULL,
    outcome     TEXT   NOT NULL,
    count       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, workflow_id, version, node_id, outcome)
);
