//! The change ledger: every change to a user, in the order it happened
//! (`seq`). The write side is called by [`super::users`], the one module
//! that changes users, in the statement's own transaction: a creation
//! right after its insert, an update with the values before and after
//! (read back by the update itself), a deletion with the whole user. The
//! read side serves `jobs show --changes`, the change feed, `userdrop
//! changes` and the provisioner; retention removes old changes and
//! remembers how far it went, so a consumer that fell behind it is told to
//! start again rather than silently skip changes. This module must never
//! change a user, nor record a change its caller did not make.

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension};

use super::{Db, StoreError};

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    pub tenant: String,
    pub job: i64,
    pub key: String,
    /// created | updated | deactivated | reactivated | deleted
    pub op: String,
    /// The fields that changed (updated, deactivated, reactivated).
    pub fields: Vec<String>,
    /// JSON object: the changed fields' values before (the whole user for
    /// a deletion); None for a creation.
    pub before: Option<String>,
    /// JSON object: the changed fields' values after; None for a creation
    /// or a deletion.
    pub after: Option<String>,
    pub at: String,
}

/// When a change of `changes c` was made: a creation's time is its job's.
macro_rules! at_of_change {
    () => {
        "COALESCE(c.at, (SELECT j.created_at FROM jobs j WHERE j.id = c.job_id), '')"
    };
}
pub(super) const AT: &str = at_of_change!();

/// The columns read, from `changes c`: a change's, then a run's keys.
const COLUMNS: &str = concat!(
    "c.seq, c.tenant, c.job_id, c.key, c.op, c.fields, c.before, c.after, ",
    at_of_change!(),
    ", c.keys"
);

/// Hands `each` the changes one row of the ledger stands for: itself, or
/// for a run of creations one creation per key, with the seqs that end at
/// the row's.
fn changes_of(r: &rusqlite::Row<'_>, mut each: impl FnMut(Change)) -> Result<(), StoreError> {
    let fields: Option<String> = r.get(5)?;
    let change = Change {
        seq: r.get(0)?,
        tenant: r.get(1)?,
        job: r.get(2)?,
        key: r.get(3)?,
        op: r.get(4)?,
        fields: fields
            .and_then(|f| serde_json::from_str(&f).ok())
            .unwrap_or_default(),
        before: r.get(6)?,
        after: r.get(7)?,
        at: r.get(8)?,
    };
    let Some(keys) = r.get::<_, Option<String>>(9)? else {
        each(change);
        return Ok(());
    };
    let keys: Vec<String> = serde_json::from_str(&keys).map_err(|source| StoreError::Json {
        column: "changes.keys",
        source,
    })?;
    let first = change.seq + 1 - keys.len() as i64;
    for (seq, key) in (first..).zip(keys) {
        each(Change {
            seq,
            key,
            ..change.clone()
        });
    }
    Ok(())
}

/// `changes c` read through its index by tenant (migration 014): a
/// tenant's changes in seq order, without walking other tenants'. Named,
/// because on a small table the planner would rather walk seq.
pub(super) const BY_TENANT: &str = "changes c INDEXED BY changes_tenant";

/// How many changes the row `changes c` stands for.
pub(super) const SIZE: &str = "CASE WHEN c.keys IS NULL THEN 1 ELSE json_array_length(c.keys) END";

/// The statement that records a single creation (`?1` tenant, `?2` job,
/// `?3` key).
pub(super) const RECORD_CREATED: &str =
    "INSERT INTO changes (tenant, job_id, key, op) VALUES (?1, ?2, ?3, 'created')";

/// The statement that records a run of creations as one row (`?1` tenant,
/// `?2` job, `?3` how many, `?4` the first key, `?5` [`keys_of_run`]): its
/// seq is the last of the `?3` it stands for.
pub(super) const RECORD_CREATED_RUN: &str =
    "INSERT INTO changes (seq, tenant, job_id, key, op, keys)
     VALUES ((SELECT coalesce(max(seq), 0) FROM changes) + ?3, ?1, ?2, ?4, 'created', ?5)";

/// The `keys` of a run of creations: a JSON array, in the order created.
pub(super) fn keys_of_run<'a>(keys: impl Iterator<Item = &'a str>) -> String {
    json_array(keys)
}

/// The columns of a user that the ledger follows, in the order a change
/// lists them. `dn` is not among them: it is the reference a file's
/// `Manager` DN is resolved through, not a field of the user, so setting it
/// is not a change to anyone (a deletion's before-image still keeps it).
pub(super) const TRACKED: [&str; 14] = [
    "user_id",
    "email",
    "first_name",
    "last_name",
    "enabled",
    "roles",
    "reports_to",
    "task_notification",
    "notify_if_new_user",
    "mobile_number",
    "country",
    "state",
    "last_active_date",
    "attributes",
];

/// [`TRACKED`] as a column list, for a SELECT or a RETURNING clause.
pub(super) const TRACKED_COLUMNS: &str = "user_id, email, first_name, last_name, enabled, roles, \
     reports_to, task_notification, notify_if_new_user, mobile_number, country, state, \
     last_active_date, attributes";

/// What a deletion keeps of the user: every tracked column, then `dn`.
pub(super) const DELETED_COLUMNS: &str = "user_id, email, first_name, last_name, enabled, roles, \
     reports_to, task_notification, notify_if_new_user, mobile_number, country, state, \
     last_active_date, attributes, dn";

/// A user's tracked values, as read by a statement selecting or returning
/// [`TRACKED_COLUMNS`] (or [`DELETED_COLUMNS`]) from column `from` on.
pub(super) type Image = Vec<Value>;

pub(super) fn image(r: &rusqlite::Row<'_>, from: usize, n: usize) -> rusqlite::Result<Image> {
    (from..from + n).map(|i| r.get::<_, Value>(i)).collect()
}

/// The statement that records every change but a creation.
const RECORD: &str = "INSERT INTO changes (tenant, job_id, key, op, fields, before, after, at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// Who made a change, and when.
pub(super) struct By<'a> {
    pub tenant: &'a str,
    pub job: i64,
    pub at: &'a str,
}

/// Records the update of `key` from `before` to `after` (both
/// [`TRACKED`]): the fields that differ with their values on each side;
/// `enabled` going 1 → 0 is a deactivation and 0 → 1 a reactivation.
/// Nothing is recorded when nothing differs. Returns whether it recorded.
pub(super) fn record_update(
    conn: &Connection,
    by: &By<'_>,
    key: &str,
    before: &[Value],
    after: &[Value],
) -> Result<bool, StoreError> {
    let changed: Vec<usize> = (0..TRACKED.len())
        .filter(|&i| before[i] != after[i])
        .collect();
    if changed.is_empty() {
        return Ok(false);
    }
    let op = match (&before[4], &after[4]) {
        (Value::Integer(1), Value::Integer(0)) => "deactivated",
        (Value::Integer(0), Value::Integer(1)) => "reactivated",
        _ => "updated",
    };
    let names = json_array(changed.iter().map(|&i| TRACKED[i]));
    let side = |img: &[Value]| json_object(changed.iter().map(|&i| (TRACKED[i], &img[i])));
    conn.prepare_cached(RECORD)?.execute(params![
        by.tenant,
        by.job,
        key,
        op,
        names,
        side(before),
        side(after),
        by.at
    ])?;
    Ok(true)
}

/// Records the deletion of `key`, keeping the whole user as it was
/// (`before`: [`DELETED_COLUMNS`]).
pub(super) fn record_deletion(
    conn: &Connection,
    by: &By<'_>,
    key: &str,
    before: &[Value],
) -> Result<(), StoreError> {
    let names = TRACKED.iter().copied().chain(["dn"]);
    let whole = json_object(names.zip(before));
    conn.prepare_cached(RECORD)?.execute(params![
        by.tenant,
        by.job,
        key,
        "deleted",
        Value::Null,
        whole,
        Value::Null,
        by.at
    ])?;
    Ok(())
}

/// Records that a sync deactivated `key` (enabled 1 → 0).
pub(super) fn record_deactivation(
    conn: &Connection,
    by: &By<'_>,
    key: &str,
) -> Result<(), StoreError> {
    record_one(
        conn,
        by,
        key,
        "deactivated",
        "enabled",
        Value::Integer(1),
        Value::Integer(0),
    )
}

/// Records that `key` lost their manager `manager` (who was removed).
pub(super) fn record_manager_cleared(
    conn: &Connection,
    by: &By<'_>,
    key: &str,
    manager: &str,
) -> Result<(), StoreError> {
    let was = Value::Text(manager.to_string());
    record_one(conn, by, key, "updated", "reports_to", was, Value::Null)
}

fn record_one(
    conn: &Connection,
    by: &By<'_>,
    key: &str,
    op: &str,
    field: &str,
    before: Value,
    after: Value,
) -> Result<(), StoreError> {
    conn.prepare_cached(RECORD)?.execute(params![
        by.tenant,
        by.job,
        key,
        op,
        json_array([field].into_iter()),
        json_object([(field, &before)].into_iter()),
        json_object([(field, &after)].into_iter()),
        by.at
    ])?;
    Ok(())
}

fn json_array<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let items: Vec<String> = names.map(json_text).collect();
    format!("[{}]", items.join(","))
}

/// A JSON object in the order given (a map would sort the keys), with each
/// value as SQLite's `json_object` writes it: text as a string, numbers as
/// numbers, NULL as null.
fn json_object<'a>(pairs: impl Iterator<Item = (&'a str, &'a Value)>) -> String {
    let items: Vec<String> = pairs
        .map(|(name, v)| {
            let v = match v {
                Value::Null | Value::Blob(_) => "null".to_string(),
                Value::Integer(i) => i.to_string(),
                Value::Real(f) => serde_json::Value::from(*f).to_string(),
                Value::Text(t) => json_text(t),
            };
            format!("{}:{v}", json_text(name))
        })
        .collect();
    format!("{{{}}}", items.join(","))
}

fn json_text(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The statement of [`after`]: `?1` tenant, `?2` after, `?3` limit (rows).
fn after_sql() -> String {
    format!(
        "SELECT {COLUMNS} FROM {BY_TENANT} WHERE c.tenant = ?1 AND c.seq > ?2 ORDER BY c.seq LIMIT ?3"
    )
}

/// The statement of [`last_seq`]: `?1` tenant.
fn last_seq_sql() -> String {
    format!("SELECT max(c.seq) FROM {BY_TENANT} WHERE c.tenant = ?1")
}

/// A tenant's changes after `after`, oldest first, at most `limit`.
pub fn after(
    db: &impl Db,
    tenant: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<Change>, StoreError> {
    let conn = db.sql();
    let mut stmt = conn.prepare_cached(&after_sql())?;
    // Each row is one change or more, so `limit` rows hold enough.
    let mut rows = stmt.query(params![tenant, after, limit])?;
    let limit = usize::try_from(limit).unwrap_or(0);
    let mut list = Vec::new();
    while let Some(r) = rows.next()? {
        changes_of(r, |c| {
            if c.seq > after && list.len() < limit {
                list.push(c)
            }
        })?;
    }
    Ok(list)
}

/// A job's changes in order, one at a time.
pub fn of_job(
    db: &impl Db,
    tenant: &str,
    job: i64,
    mut each: impl FnMut(Change),
) -> Result<(), StoreError> {
    let conn = db.sql();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM {BY_TENANT} WHERE c.tenant = ?1 AND c.job_id = ?2 ORDER BY c.seq"
    ))?;
    let mut rows = stmt.query(params![tenant, job])?;
    while let Some(r) = rows.next()? {
        changes_of(r, &mut each)?;
    }
    Ok(())
}

/// The newest seq of a tenant's changes (0: none yet).
pub fn last_seq(db: &impl Db, tenant: &str) -> Result<i64, StoreError> {
    let conn = db.sql();
    Ok(conn
        .prepare_cached(&last_seq_sql())?
        .query_row([tenant], |r| r.get::<_, Option<i64>>(0))?
        .unwrap_or(0))
}

/// The last seq retention removed for the tenant (0: none): a cursor
/// below it has missed changes.
pub fn pruned_through(db: &impl Db, tenant: &str) -> Result<i64, StoreError> {
    let conn = db.sql();
    Ok(conn
        .prepare_cached("SELECT through FROM changes_pruned WHERE tenant = ?1")?
        .query_row([tenant], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Removes the changes recorded before `before` (stored text form of a
/// time), remembering per tenant the last seq removed. Returns how many.
pub fn prune(db: &impl Db, before: &str) -> Result<usize, StoreError> {
    let conn = db.sql();
    // A creation's time is its job's.
    let old = format!("{AT} < ?1");
    conn.execute(
        &format!(
            "INSERT INTO changes_pruned (tenant, through)
             SELECT c.tenant, max(c.seq) FROM changes c
             WHERE {old} AND c.seq < (SELECT max(seq) FROM changes) GROUP BY c.tenant
             ON CONFLICT (tenant) DO UPDATE SET through = max(through, excluded.through)"
        ),
        [before],
    )?;
    // The newest row stays whatever its age: the next seq is one past the
    // highest kept, so it must never fall back.
    let removable = format!("{old} AND c.seq < (SELECT max(seq) FROM changes)");
    let removed: i64 = conn.query_row(
        &format!("SELECT coalesce(sum({SIZE}), 0) FROM changes c WHERE {removable}"),
        [before],
        |r| r.get(0),
    )?;
    conn.execute(
        &format!(
            "DELETE FROM changes WHERE seq IN (SELECT c.seq FROM changes c WHERE {removable})"
        ),
        [before],
    )?;
    Ok(usize::try_from(removed).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sealed::Sql as _;
    use crate::store::Store;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        (dir, s)
    }

    fn exec(s: &Store, sql: &str) {
        s.sql().execute_batch(sql).unwrap();
    }

    fn image_of(s: &Store, key: &str) -> Image {
        s.sql()
            .query_row(
                &format!("SELECT {TRACKED_COLUMNS} FROM users WHERE key = ?1"),
                [key],
                |r| image(r, 0, TRACKED.len()),
            )
            .unwrap()
    }

    #[test]
    fn a_change_names_what_changed_and_nothing_else() {
        let (_d, s) = store();
        exec(
            &s,
            "INSERT INTO users (tenant, key, email, created_job, updated_job, created_at, updated_at)
               VALUES ('a', 'k1', 'K1@x', 1, 1, 't1', 't1'), ('b', 'k2', 'k2@x', 1, 1, 't1', 't1');
             INSERT INTO changes (tenant, job_id, key, op) VALUES ('a', 1, 'k1', 'created');",
        );
        let conn = s.sql();
        let by = |job| By {
            tenant: "a",
            job,
            at: "t",
        };
        let update = |job, sql: &str| {
            let before = image_of(&s, "k1");
            exec(&s, sql);
            record_update(conn, &by(job), "k1", &before, &image_of(&s, "k1")).unwrap()
        };
        assert!(update(
            2,
            "UPDATE users SET email = 'k1@x', first_name = 'Ann' WHERE key = 'k1'"
        ));
        // Columns the ledger does not follow are no change.
        assert!(!update(
            9,
            "UPDATE users SET row_hash = 5, dn = 'cn=x' WHERE key = 'k1'"
        ));
        let id: i64 = conn
            .query_row("SELECT id FROM users WHERE key = 'k1'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(crate::store::users::deactivate(&s, &[id], 3).unwrap(), 1);
        // Deactivating someone already inactive records nothing.
        assert_eq!(crate::store::users::deactivate(&s, &[id], 8).unwrap(), 0);
        assert!(update(4, "UPDATE users SET enabled = 1 WHERE key = 'k1'"));
        let mut gone = Vec::new();
        assert_eq!(
            crate::store::users::delete_ids(&s, &[id], 5, &mut gone).unwrap(),
            1
        );
        let all = after(&s, "a", 0, 100).unwrap();
        let ops: Vec<(&str, i64)> = all.iter().map(|c| (c.op.as_str(), c.job)).collect();
        assert_eq!(
            ops,
            [
                ("created", 1),
                ("updated", 2),
                ("deactivated", 3),
                ("reactivated", 4),
                ("deleted", 5)
            ]
        );
        assert_eq!(all[1].fields, ["email", "first_name"]);
        assert_eq!(
            all[1].before.as_deref(),
            Some(r#"{"email":"K1@x","first_name":null}"#)
        );
        assert_eq!(
            all[1].after.as_deref(),
            Some(r#"{"email":"k1@x","first_name":"Ann"}"#)
        );
        assert_eq!(all[2].fields, ["enabled"]);
        assert_eq!(all[2].before.as_deref(), Some(r#"{"enabled":1}"#));
        assert_eq!(all[2].after.as_deref(), Some(r#"{"enabled":0}"#));
        let gone: serde_json::Value =
            serde_json::from_str(all[4].before.as_deref().unwrap()).unwrap();
        assert_eq!(gone["first_name"], "Ann");
        assert_eq!(gone["dn"], "cn=x");
        assert_eq!(gone["roles"], "[]");
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(last_seq(&s, "a").unwrap(), all[4].seq);
        assert_eq!(last_seq(&s, "b").unwrap(), 0);
    }

    #[test]
    fn the_ledger_has_no_triggers_left() {
        // The ledger is written by the functions that change users, not by
        // triggers: a statement on the table itself records nothing.
        let (_d, s) = store();
        exec(
            &s,
            "INSERT INTO users (tenant, key, email, created_job, updated_job, created_at, updated_at)
               VALUES ('a', 'k1', 'k1@x', 1, 1, 't1', 't1');
             UPDATE users SET first_name = 'Ann' WHERE key = 'k1';
             DELETE FROM users WHERE key = 'k1';",
        );
        assert!(after(&s, "a", 0, 100).unwrap().is_empty());
        let triggers: i64 = s
            .sql()
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(triggers, 0);
    }

    #[test]
    fn a_run_of_creations_stands_for_one_change_per_key() {
        let (_d, s) = store();
        exec(
            &s,
            "INSERT INTO changes (tenant, job_id, key, op, at) VALUES ('a', 1, 'k0', 'created', 't1')",
        );
        let keys = keys_of_run(["k1", "k\"2", "k3"].into_iter());
        s.sql()
            .execute(RECORD_CREATED_RUN, params!["a", 2, 3, "k1", keys])
            .unwrap();
        exec(
            &s,
            "UPDATE changes SET at = 't2' WHERE job_id = 2;
             INSERT INTO changes (tenant, job_id, key, op, at) VALUES ('b', 3, 'x', 'created', 't3');",
        );
        let seen = |after_: i64, limit| -> Vec<(i64, String)> {
            after(&s, "a", after_, limit)
                .unwrap()
                .into_iter()
                .map(|c| (c.seq, c.key))
                .collect()
        };
        let all = seen(0, 10);
        let want: Vec<(i64, String)> = [(1, "k0"), (2, "k1"), (3, "k\"2"), (4, "k3")]
            .map(|(n, k)| (n, k.to_string()))
            .into();
        assert_eq!(all, want);
        assert_eq!(seen(2, 10), want[2..]);
        assert_eq!(seen(0, 2), want[..2]);
        assert_eq!(seen(3, 1), want[3..]);
        assert_eq!(seen(4, 10), []);
        let mut of_two = Vec::new();
        of_job(&s, "a", 2, |c| of_two.push((c.seq, c.key, c.op))).unwrap();
        assert_eq!(of_two.len(), 3);
        assert!(of_two.iter().all(|c| c.2 == "created"));
        assert_eq!(last_seq(&s, "a").unwrap(), 4);
        assert_eq!(
            last_seq(&s, "b").unwrap(),
            5,
            "the next row follows the run"
        );
        // The provisioner's lag counts the run's keys past its cursor.
        let lag = || {
            super::super::provision::standing(&s, "a", 0)
                .unwrap()
                .lag_changes
        };
        assert_eq!(lag(), 4);
        super::super::provision::advance(&s, "a", 2).unwrap();
        assert_eq!(lag(), 2);
        // Retention removes the run whole and says how many changes went.
        assert_eq!(prune(&s, "t3").unwrap(), 4);
        assert_eq!(pruned_through(&s, "a").unwrap(), 4);
    }

    #[test]
    fn a_tenants_changes_are_read_by_its_index() {
        // Another tenant's changes past the cursor are never walked: the
        // statements `after` and `last_seq` run step through tenant a's
        // two changes, not past tenant b's thousands.
        let (_d, s) = store();
        exec(
            &s,
            "INSERT INTO changes (tenant, job_id, key, op) VALUES ('a', 1, 'k1', 'created');
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
             INSERT INTO changes (tenant, job_id, key, op) SELECT 'b', 2, 'x' || i, 'created' FROM n;
             INSERT INTO changes (tenant, job_id, key, op) VALUES ('a', 3, 'k2', 'created');",
        );
        let keys: Vec<String> = after(&s, "a", 0, 10)
            .unwrap()
            .into_iter()
            .map(|c| c.key)
            .collect();
        assert_eq!(keys, ["k1", "k2"]);
        assert_eq!(last_seq(&s, "a").unwrap(), 5002);
        assert_eq!(last_seq(&s, "b").unwrap(), 5001);
        let conn = s.sql();
        for sql in [after_sql(), last_seq_sql()] {
            let stmt = conn.prepare_cached(&sql).unwrap();
            let steps = stmt.get_status(rusqlite::StatementStatus::VmStep);
            assert!(steps < 500, "{steps} steps for {sql}");
        }
    }

    #[test]
    fn pruning_remembers_how_far_it_went() {
        let (_d, s) = store();
        exec(
            &s,
            "INSERT INTO users (tenant, key, email, created_job, updated_job, created_at, updated_at)
               VALUES ('a', 'k1', 'k1@x', 1, 1, '2020-01-01T00:00:00Z', 't'),
                      ('a', 'k2', 'k2@x', 2, 2, '2030-01-01T00:00:00Z', 't');",
        );
        exec(
            &s,
            "INSERT INTO changes (tenant, job_id, key, op) VALUES ('a', 1, 'k1', 'created'), ('a', 2, 'k2', 'created')",
        );
        exec(
            &s,
            "UPDATE changes SET at = '2020-01-01T00:00:00Z' WHERE key = 'k1';
             UPDATE changes SET at = '2030-01-01T00:00:00Z' WHERE key = 'k2';",
        );
        assert_eq!(pruned_through(&s, "a").unwrap(), 0);
        assert_eq!(prune(&s, "2025-01-01T00:00:00Z").unwrap(), 1);
        let left = after(&s, "a", 0, 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(pruned_through(&s, "a").unwrap(), left[0].seq - 1);
        // Pruning again never moves the mark back.
        assert_eq!(prune(&s, "2000-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(pruned_through(&s, "a").unwrap(), left[0].seq - 1);
    }
}
