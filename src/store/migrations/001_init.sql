-- userdrop store, version 1. Applied once, in one transaction, by store::migrate.

-- One row per user per tenant. `key` is the value of the tenant's key field
-- (user_id, email or mobile_number) and identifies the user across imports.
CREATE TABLE users (
    id                 INTEGER PRIMARY KEY,
    tenant             TEXT    NOT NULL,
    key                TEXT    NOT NULL,
    user_id            TEXT,
    email              TEXT    NOT NULL COLLATE NOCASE,
    first_name         TEXT,
    last_name          TEXT,
    enabled            INTEGER NOT NULL DEFAULT 1,
    -- JSON array of role names, in the order the file gave them.
    roles              TEXT    NOT NULL DEFAULT '[]',
    reports_to         TEXT,
    task_notification  TEXT    NOT NULL DEFAULT 'Email',
    notify_if_new_user INTEGER NOT NULL DEFAULT 0,
    mobile_number      TEXT,
    country            TEXT,
    state              TEXT,
    last_active_date   TEXT,
    -- JSON object of the tenant's own fields.
    attributes         TEXT    NOT NULL DEFAULT '{}',
    -- Hash of the import row that last wrote this user. An identical row in a
    -- later file is "unchanged" and not rewritten. Anything else that changes
    -- the user (sync deactivation) sets it to NULL.
    row_hash           INTEGER,
    created_job        INTEGER NOT NULL,
    updated_job        INTEGER NOT NULL,
    created_at         TEXT    NOT NULL,
    updated_at         TEXT    NOT NULL
);
CREATE UNIQUE INDEX users_tenant_key ON users (tenant, key);
CREATE UNIQUE INDEX users_tenant_email ON users (tenant, email);

-- The roles each tenant has; a role is created the first time a file names it.
CREATE TABLE roles (
    tenant      TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    created_job INTEGER NOT NULL,
    PRIMARY KEY (tenant, name)
) WITHOUT ROWID;

-- The job ledger: one row per file that reached the pipeline.
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    tenant      TEXT    NOT NULL,
    -- The file's name as the customer dropped it.
    file        TEXT    NOT NULL,
    -- How the file arrived: cli, sftp, watcher, schedule, startup.
    source      TEXT    NOT NULL,
    -- Where the file is while the job runs (the spool copy, or the path given to the CLI).
    path        TEXT    NOT NULL,
    -- received, then applied | failed | held, set with the status by the
    -- transaction that decides the job (an approved held job becomes applied
    -- or failed). Archiving is not a state: the daemon sets archived_at
    -- (migration 002) once .bak/ and results/ are written; the job's mail
    -- has its own state in the outbox (migration 003).
    state       TEXT    NOT NULL,
    -- ok | rows_failed | rejected | held; NULL until the job is decided.
    status      TEXT,
    -- The job's outcome as JSON (the `--json` object without its errors).
    report      TEXT,
    created_at  TEXT    NOT NULL,
    finished_at TEXT,
    -- Set by `userdrop jobs approve` on a held sync job.
    approved_at TEXT
);
CREATE INDEX jobs_tenant ON jobs (tenant, id);

-- Every failed row of a job, with the row's original cells so that the
-- failed-rows CSV can be rebuilt at any time.
CREATE TABLE job_errors (
    job_id  INTEGER NOT NULL REFERENCES jobs (id),
    seq     INTEGER NOT NULL,
    row     INTEGER NOT NULL,
    key     TEXT    NOT NULL,
    field   TEXT,
    code    TEXT    NOT NULL,
    message TEXT    NOT NULL,
    -- JSON array of the row's cells exactly as received.
    cells   TEXT    NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
