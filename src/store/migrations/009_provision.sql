-- SCIM provisioning (crate::provision): what the application was told.
-- Each tenant's cursor in the change ledger moves in the same transaction
-- as the id map and the error list, so a crash never loses a change nor
-- pushes one twice as a new user.

-- The application's id of each user it holds (its SCIM `id`).
CREATE TABLE provision_ids (
    tenant  TEXT NOT NULL,
    key     TEXT NOT NULL,
    scim_id TEXT NOT NULL,
    PRIMARY KEY (tenant, key)
) WITHOUT ROWID;

-- The last change (changes.seq) the application accepted or refused.
CREATE TABLE provision_cursor (
    tenant TEXT    PRIMARY KEY,
    seq    INTEGER NOT NULL,
    -- When it last moved.
    at     TEXT    NOT NULL
) WITHOUT ROWID;

-- Changes the application refused (a 4xx other than the ones the
-- provisioner resolves itself): reported, then passed over.
CREATE TABLE provision_errors (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant  TEXT    NOT NULL,
    -- The change refused (0: a resync push).
    seq     INTEGER NOT NULL,
    job_id  INTEGER NOT NULL,
    key     TEXT    NOT NULL,
    status  INTEGER NOT NULL,
    message TEXT    NOT NULL,
    at      TEXT    NOT NULL
);
CREATE INDEX provision_errors_tenant ON provision_errors (tenant, id);
CREATE INDEX provision_errors_job ON provision_errors (job_id);

-- Users to push again whatever the ledger says (`userdrop provision
-- resync`); a row goes when its user was pushed.
CREATE TABLE provision_resync (
    tenant TEXT NOT NULL,
    key    TEXT NOT NULL,
    PRIMARY KEY (tenant, key)
) WITHOUT ROWID;

-- A manager is named by user_id: the provisioner finds their key by it.
CREATE INDEX users_tenant_user_id ON users (tenant, user_id) WHERE user_id IS NOT NULL;
