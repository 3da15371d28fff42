-- The change ledger: every change to a user, in the order it happened,
-- written in the same transaction as the change itself, so nothing is
-- recorded for a change rolled back. Updates and deletions are written by
-- the triggers below, so no path that changes or removes users (an import,
-- a sync, `jobs approve`, a manager cleared) can forget them. Creations are
-- written by the one statement that creates users (`store::users::Writer`)
-- right after each insert: a trigger per new user cost a million-row import
-- a third of its speed. An unchanged row writes no change: the
-- import leaves it untouched, and the update trigger fires only when a
-- user's data differs.
CREATE TABLE changes (
    -- Only grows: a consumer's cursor. Not AUTOINCREMENT (its bookkeeping
    -- row per insert cost too much); retention never removes the newest
    -- change, so the next seq is always past every seq ever given.
    seq     INTEGER PRIMARY KEY,
    tenant  TEXT    NOT NULL,
    -- The job that made the change (for a deletion: the job that deleted,
    -- which the store writes into the row just before removing it).
    job_id  INTEGER NOT NULL,
    key     TEXT    NOT NULL,
    -- created | updated | deactivated | reactivated | deleted
    op      TEXT    NOT NULL,
    -- JSON array of the fields that changed; NULL for created and deleted.
    fields  TEXT,
    -- JSON object: the changed fields' values before the change (the whole
    -- user for a deletion); NULL for created. What an undo builds on.
    before  TEXT,
    -- JSON object: the changed fields' values after it; NULL for created
    -- (the user as stored then) and deleted.
    after   TEXT,
    -- When; NULL for a creation, which happened when its job ran (the
    -- readers take the job's time): a million creations stay small.
    at      TEXT
);
-- No index beyond seq: a reader walks seq order and skips other tenants'
-- changes; an index on (tenant, seq) made a million-row import a tenth
-- slower for every tenant.

-- Per tenant, the last seq that retention removed: a consumer whose cursor
-- is older has missed changes and must start again from the users.
CREATE TABLE changes_pruned (
    tenant  TEXT    PRIMARY KEY,
    through INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER users_updated AFTER UPDATE ON users
WHEN OLD.user_id IS NOT NEW.user_id
  OR OLD.email IS NOT NEW.email COLLATE BINARY
  OR OLD.first_name IS NOT NEW.first_name
  OR OLD.last_name IS NOT NEW.last_name
  OR OLD.enabled IS NOT NEW.enabled
  OR OLD.roles IS NOT NEW.roles
  OR OLD.reports_to IS NOT NEW.reports_to
  OR OLD.task_notification IS NOT NEW.task_notification
  OR OLD.notify_if_new_user IS NOT NEW.notify_if_new_user
  OR OLD.mobile_number IS NOT NEW.mobile_number
  OR OLD.country IS NOT NEW.country
  OR OLD.state IS NOT NEW.state
  OR OLD.last_active_date IS NOT NEW.last_active_date
  OR OLD.attributes IS NOT NEW.attributes
  OR OLD.dn IS NOT NEW.dn
BEGIN
    INSERT INTO changes (tenant, job_id, key, op, fields, before, after, at)
    SELECT NEW.tenant, NEW.updated_job, NEW.key,
        CASE WHEN OLD.enabled = 1 AND NEW.enabled = 0 THEN 'deactivated'
             WHEN OLD.enabled = 0 AND NEW.enabled = 1 THEN 'reactivated'
             ELSE 'updated' END,
        json_group_array(name), json_group_object(name, old), json_group_object(name, new),
        NEW.updated_at
    FROM (
        SELECT 'user_id' AS name, OLD.user_id AS old, NEW.user_id AS new WHERE OLD.user_id IS NOT NEW.user_id
        UNION ALL SELECT 'email', OLD.email, NEW.email WHERE OLD.email IS NOT NEW.email COLLATE BINARY
        UNION ALL SELECT 'first_name', OLD.first_name, NEW.first_name WHERE OLD.first_name IS NOT NEW.first_name
        UNION ALL SELECT 'last_name', OLD.last_name, NEW.last_name WHERE OLD.last_name IS NOT NEW.last_name
        UNION ALL SELECT 'enabled', OLD.enabled, NEW.enabled WHERE OLD.enabled IS NOT NEW.enabled
        UNION ALL SELECT 'roles', OLD.roles, NEW.roles WHERE OLD.roles IS NOT NEW.roles
        UNION ALL SELECT 'reports_to', OLD.reports_to, NEW.reports_to WHERE OLD.reports_to IS NOT NEW.reports_to
        UNION ALL SELECT 'task_notification', OLD.task_notification, NEW.task_notification WHERE OLD.task_notification IS NOT NEW.task_notification
        UNION ALL SELECT 'notify_if_new_user', OLD.notify_if_new_user, NEW.notify_if_new_user WHERE OLD.notify_if_new_user IS NOT NEW.notify_if_new_user
        UNION ALL SELECT 'mobile_number', OLD.mobile_number, NEW.mobile_number WHERE OLD.mobile_number IS NOT NEW.mobile_number
        UNION ALL SELECT 'country', OLD.country, NEW.country WHERE OLD.country IS NOT NEW.country
        UNION ALL SELECT 'state', OLD.state, NEW.state WHERE OLD.state IS NOT NEW.state
        UNION ALL SELECT 'last_active_date', OLD.last_active_date, NEW.last_active_date WHERE OLD.last_active_date IS NOT NEW.last_active_date
        UNION ALL SELECT 'attributes', OLD.attributes, NEW.attributes WHERE OLD.attributes IS NOT NEW.attributes
        UNION ALL SELECT 'dn', OLD.dn, NEW.dn WHERE OLD.dn IS NOT NEW.dn
    );
END;

CREATE TRIGGER users_deleted AFTER DELETE ON users
BEGIN
    INSERT INTO changes (tenant, job_id, key, op, before, at)
    VALUES (OLD.tenant, OLD.updated_job, OLD.key, 'deleted',
        json_object(
            'user_id', OLD.user_id, 'email', OLD.email,
            'first_name', OLD.first_name, 'last_name', OLD.last_name,
            'enabled', OLD.enabled, 'roles', OLD.roles,
            'reports_to', OLD.reports_to, 'task_notification', OLD.task_notification,
            'notify_if_new_user', OLD.notify_if_new_user,
            'mobile_number', OLD.mobile_number, 'country', OLD.country,
            'state', OLD.state, 'last_active_date', OLD.last_active_date,
            'attributes', OLD.attributes, 'dn', OLD.dn),
        strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
END;
