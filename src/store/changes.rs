//! The change ledger, read side: what migration 007's triggers recorded of
//! every change to a user, in the order it happened (`seq`), for `jobs show
//! --changes`, the change feed, `userdrop changes` and the provisioner; and
//! retention, which removes old changes and remembers how far it went so a
//! consumer that fell behind it is told to start again rather than silently
//! skip changes. This module must never write a change itself: the triggers
//! do, in the transaction that changes the user.

use rusqlite::{params, OptionalExtension};

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

/// The columns read, from `changes c`.
const COLUMNS: &str = concat!(
    "c.seq, c.tenant, c.job_id, c.key, c.op, c.fields, c.before, c.after, ",
    at_of_change!()
);

fn change_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Change> {
    let fields: Option<String> = r.get(5)?;
    Ok(Change {
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
    })
}

/// The statement that records a creation (`?1` tenant, `?2` job, `?3`
/// key): [`super::users::Writer`] runs it right after each insert.
pub(super) const RECORD_CREATED: &str =
    "INSERT INTO changes (tenant, job_id, key, op) VALUES (?1, ?2, ?3, 'created')";

/// A tenant's changes after `after`, oldest first, at most `limit`.
pub fn after(
    db: &impl Db,
    tenant: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<Change>, StoreError> {
    let conn = db.sql();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM changes c WHERE c.seq > ?2 AND c.tenant = ?1 ORDER BY c.seq LIMIT ?3"
    ))?;
    let rows = stmt
        .query_map(params![tenant, after, limit], change_from)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
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
        "SELECT {COLUMNS} FROM changes c WHERE c.tenant = ?1 AND c.job_id = ?2 ORDER BY c.seq"
    ))?;
    let mut rows = stmt.query(params![tenant, job])?;
    while let Some(r) = rows.next()? {
        each(change_from(r)?);
    }
    Ok(())
}

/// The newest seq of a tenant's changes (0: none yet).
pub fn last_seq(db: &impl Db, tenant: &str) -> Result<i64, StoreError> {
    let conn = db.sql();
    Ok(conn
        .prepare_cached("SELECT max(seq) FROM changes WHERE tenant = ?1")?
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
    Ok(conn.execute(
        // The newest change stays whatever its age: the next seq is one past
        // the highest kept, so it must never fall back.
        &format!(
            "DELETE FROM changes WHERE seq IN (SELECT c.seq FROM changes c WHERE {old})
             AND seq < (SELECT max(seq) FROM changes)"
        ),
        [before],
    )?)
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

    #[test]
    fn the_triggers_record_what_changed_and_nothing_else() {
        let (_d, s) = store();
        exec(
            &s,
            "INSERT INTO users (tenant, key, email, created_job, updated_job, created_at, updated_at)
               VALUES ('a', 'k1', 'K1@x', 1, 1, 't1', 't1');
             UPDATE users SET email = 'k1@x', first_name = 'Ann', updated_job = 2, updated_at = 't2' WHERE key = 'k1';
             UPDATE users SET row_hash = 5, updated_job = 9 WHERE key = 'k1';
             UPDATE users SET enabled = 0, updated_job = 3, updated_at = 't3' WHERE key = 'k1';
             UPDATE users SET enabled = 1, updated_job = 4, updated_at = 't4' WHERE key = 'k1';
             UPDATE users SET updated_job = 5 WHERE key = 'k1';
             DELETE FROM users WHERE key = 'k1';",
        );
        // The creation is recorded by the import, not by a trigger.
        assert_eq!(after(&s, "a", 0, 100).unwrap()[0].op, "updated");
        exec(&s, "DELETE FROM changes");
        exec(
            &s,
            "INSERT INTO users (tenant, key, email, created_job, updated_job, created_at, updated_at)
               VALUES ('a', 'k1', 'K1@x', 1, 1, 't1', 't1'), ('b', 'k2', 'k2@x', 1, 1, 't1', 't1');",
        );
        exec(
            &s,
            "INSERT INTO changes (tenant, job_id, key, op) VALUES ('a', 1, 'k1', 'created')",
        );
        exec(
            &s,
            "UPDATE users SET email = 'k1@x', first_name = 'Ann', updated_job = 2, updated_at = 't2' WHERE key = 'k1';
             UPDATE users SET row_hash = 5, updated_job = 9 WHERE key = 'k1';
             UPDATE users SET enabled = 0, updated_job = 3, updated_at = 't3' WHERE key = 'k1';
             UPDATE users SET enabled = 1, updated_job = 4, updated_at = 't4' WHERE key = 'k1';
             UPDATE users SET updated_job = 5 WHERE key = 'k1';
             DELETE FROM users WHERE key = 'k1';",
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
        let gone: serde_json::Value =
            serde_json::from_str(all[4].before.as_deref().unwrap()).unwrap();
        assert_eq!(gone["first_name"], "Ann");
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(last_seq(&s, "a").unwrap(), all[4].seq);
        assert_eq!(last_seq(&s, "b").unwrap(), 0);
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
