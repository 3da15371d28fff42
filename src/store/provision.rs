//! What the SCIM provisioner (`crate::provision`) remembers: per tenant,
//! how far in the change ledger the application was brought (the cursor),
//! the application's id of each user it holds, the changes it refused, and
//! the users marked to be pushed again (`userdrop provision resync`). The
//! cursor, the id map and the error list move together in the caller's
//! transaction ([`settle_change`]). This module must never decide what to
//! send: it records what the application answered.

use rusqlite::{params, OptionalExtension};

use super::{now_text, Db, StoreError};

/// What the application holds of a user after a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It holds the user under this id.
    Holds(String),
    /// It holds no such user (deleted, or never created).
    Gone,
    /// It refused the request: the HTTP status and its message. The id map
    /// stays as it was.
    Refused { status: u16, message: String },
}

/// One refused change, as `provision status` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refusal {
    pub seq: i64,
    pub job: i64,
    pub key: String,
    pub status: u16,
    pub message: String,
    pub at: String,
}

/// Where a tenant's provisioning stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Standing {
    pub tenant: String,
    /// The last change the application was brought up to (0: none yet).
    pub cursor: i64,
    /// The newest change recorded.
    pub last_seq: i64,
    /// Changes after the cursor.
    pub lag_changes: i64,
    /// When the oldest change after the cursor was recorded.
    pub oldest_pending_at: Option<String>,
    /// Users marked by a resync and not pushed yet.
    pub resync_pending: i64,
    pub errors: i64,
    /// The newest refusals, newest first.
    pub last_errors: Vec<Refusal>,
}

/// The tenant's cursor (0: nothing provisioned yet).
pub fn cursor(db: &impl Db, tenant: &str) -> Result<i64, StoreError> {
    let conn = db.sql();
    Ok(conn
        .prepare_cached("SELECT seq FROM provision_cursor WHERE tenant = ?1")?
        .query_row([tenant], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// The application's id of a user, when it holds them.
pub fn scim_id(db: &impl Db, tenant: &str, key: &str) -> Result<Option<String>, StoreError> {
    let conn = db.sql();
    Ok(conn
        .prepare_cached("SELECT scim_id FROM provision_ids WHERE tenant = ?1 AND key = ?2")?
        .query_row([tenant, key], |r| r.get(0))
        .optional()?)
}

/// The key of the user whose user_id is `user_id` (how a manager is named).
pub fn key_of_user_id(
    db: &impl Db,
    tenant: &str,
    user_id: &str,
) -> Result<Option<String>, StoreError> {
    let conn = db.sql();
    Ok(conn
        .prepare_cached(&format!(
            "SELECT key FROM users WHERE id IN ({}) LIMIT 1",
            super::users::with_user_id("?1", "?2")
        ))?
        .query_row([tenant, user_id], |r| r.get(0))
        .optional()?)
}

/// Records what the application holds of a user, without moving the cursor
/// (a manager pushed ahead of their own change).
pub fn record(db: &impl Db, tenant: &str, key: &str, outcome: &Outcome) -> Result<(), StoreError> {
    let conn = db.sql();
    match outcome {
        Outcome::Holds(id) => {
            conn.prepare_cached(
                "INSERT INTO provision_ids (tenant, key, scim_id) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant, key) DO UPDATE SET scim_id = excluded.scim_id",
            )?
            .execute(params![tenant, key, id])?;
        }
        Outcome::Gone => {
            conn.prepare_cached("DELETE FROM provision_ids WHERE tenant = ?1 AND key = ?2")?
                .execute(params![tenant, key])?;
        }
        Outcome::Refused { .. } => {}
    }
    Ok(())
}

fn refuse(
    db: &impl Db,
    tenant: &str,
    seq: i64,
    job: i64,
    key: &str,
    outcome: &Outcome,
) -> Result<(), StoreError> {
    if let Outcome::Refused { status, message } = outcome {
        db.sql()
            .prepare_cached(
                "INSERT INTO provision_errors (tenant, seq, job_id, key, status, message, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![tenant, seq, job, key, status, message, now_text()])?;
    }
    Ok(())
}

/// The application answered change `seq` (of `job`, on user `key`): records
/// the outcome and moves the cursor to `seq`. Run it in one transaction.
pub fn settle_change(
    db: &impl Db,
    tenant: &str,
    seq: i64,
    job: i64,
    key: &str,
    outcome: &Outcome,
) -> Result<(), StoreError> {
    record(db, tenant, key, outcome)?;
    refuse(db, tenant, seq, job, key, outcome)?;
    advance(db, tenant, seq)
}

/// Moves the cursor to `seq` (never back).
pub fn advance(db: &impl Db, tenant: &str, seq: i64) -> Result<(), StoreError> {
    db.sql()
        .prepare_cached(
            "INSERT INTO provision_cursor (tenant, seq, at) VALUES (?1, ?2, ?3)
             ON CONFLICT (tenant) DO UPDATE SET seq = max(seq, excluded.seq), at = excluded.at",
        )?
        .execute(params![tenant, seq, now_text()])?;
    Ok(())
}

/// The application answered the resync push of `key`: records the outcome
/// and unmarks the user. Run it in one transaction.
pub fn settle_resync(
    db: &impl Db,
    tenant: &str,
    key: &str,
    outcome: &Outcome,
) -> Result<(), StoreError> {
    record(db, tenant, key, outcome)?;
    refuse(db, tenant, 0, 0, key, outcome)?;
    db.sql()
        .prepare_cached("DELETE FROM provision_resync WHERE tenant = ?1 AND key = ?2")?
        .execute(params![tenant, key])?;
    Ok(())
}

/// Marks every user of the tenant, and every user the application is known
/// to hold, to be pushed again. Returns how many are marked.
pub fn mark_resync(db: &impl Db, tenant: &str) -> Result<i64, StoreError> {
    let conn = db.sql();
    conn.execute(
        "INSERT OR IGNORE INTO provision_resync (tenant, key)
         SELECT tenant, key FROM users WHERE tenant = ?1
         UNION SELECT tenant, key FROM provision_ids WHERE tenant = ?1",
        [tenant],
    )?;
    Ok(conn.query_row(
        "SELECT count(*) FROM provision_resync WHERE tenant = ?1",
        [tenant],
        |r| r.get(0),
    )?)
}

/// Up to `limit` users marked for a resync, by key.
pub fn resync_batch(db: &impl Db, tenant: &str, limit: i64) -> Result<Vec<String>, StoreError> {
    let conn = db.sql();
    let mut stmt = conn.prepare_cached(
        "SELECT key FROM provision_resync WHERE tenant = ?1 ORDER BY key LIMIT ?2",
    )?;
    let keys = stmt
        .query_map(params![tenant, limit], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(keys)
}

/// Whether a resync still has `key` to push.
pub fn is_marked(db: &impl Db, tenant: &str, key: &str) -> Result<bool, StoreError> {
    let conn = db.sql();
    Ok(conn
        .prepare_cached("SELECT 1 FROM provision_resync WHERE tenant = ?1 AND key = ?2")?
        .query_row([tenant, key], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The refusals of one job's changes, in order.
pub fn refusals_of_job(db: &impl Db, job: i64) -> Result<Vec<Refusal>, StoreError> {
    let conn = db.sql();
    let mut stmt = conn.prepare_cached(
        "SELECT seq, job_id, key, status, message, at FROM provision_errors
         WHERE job_id = ?1 ORDER BY id",
    )?;
    let rows = stmt
        .query_map([job], refusal_from)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

fn refusal_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Refusal> {
    Ok(Refusal {
        seq: r.get(0)?,
        job: r.get(1)?,
        key: r.get(2)?,
        status: r.get(3)?,
        message: r.get(4)?,
        at: r.get(5)?,
    })
}

/// Where the tenant's provisioning stands, with its newest `errors` refusals.
pub fn standing(db: &impl Db, tenant: &str, errors: i64) -> Result<Standing, StoreError> {
    let conn = db.sql();
    let cursor = cursor(db, tenant)?;
    let last_seq = super::changes::last_seq(db, tenant)?;
    let (lag_changes, oldest_pending_at): (i64, Option<String>) = conn
        .prepare_cached(&format!(
            // A run of creations counts its keys past the cursor.
            "SELECT coalesce(sum(min({}, c.seq - ?2)), 0), min({})
             FROM {} WHERE c.tenant = ?1 AND c.seq > ?2",
            super::changes::SIZE,
            super::changes::AT,
            super::changes::BY_TENANT
        ))?
        .query_row(params![tenant, cursor], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let resync_pending = conn
        .prepare_cached("SELECT count(*) FROM provision_resync WHERE tenant = ?1")?
        .query_row([tenant], |r| r.get(0))?;
    let count = conn
        .prepare_cached("SELECT count(*) FROM provision_errors WHERE tenant = ?1")?
        .query_row([tenant], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(
        "SELECT seq, job_id, key, status, message, at FROM provision_errors
         WHERE tenant = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let last_errors = stmt
        .query_map(params![tenant, errors], refusal_from)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Standing {
        tenant: tenant.to_string(),
        cursor,
        last_seq,
        lag_changes,
        oldest_pending_at,
        resync_pending,
        errors: count,
        last_errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sealed::Sql as _;
    use crate::store::Store;

    #[test]
    fn the_cursor_the_ids_and_the_errors_move_together() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("t.db")).unwrap();
        s.sql()
            .execute_batch(
                "INSERT INTO users (tenant, key, user_id, email, created_job, updated_job, created_at, updated_at)
                   VALUES ('a', 'k1', 'u1', 'k1@x', 1, 1, 't1', 't1'),
                          ('a', 'k2', 'u2', 'k2@x', 1, 1, 't1', 't1');
                 INSERT INTO changes (tenant, job_id, key, op)
                   VALUES ('a', 1, 'k1', 'created'), ('a', 1, 'k2', 'created');",
            )
            .unwrap();
        assert_eq!(cursor(&s, "a").unwrap(), 0);
        assert_eq!(standing(&s, "a", 5).unwrap().lag_changes, 2);
        let tx = s.write().unwrap();
        settle_change(&tx, "a", 1, 1, "k1", &Outcome::Holds("id1".into())).unwrap();
        tx.commit().unwrap();
        let refused = Outcome::Refused {
            status: 400,
            message: "bad".into(),
        };
        // Dropped without commit: nothing moves.
        let tx = s.write().unwrap();
        settle_change(&tx, "a", 2, 1, "k2", &refused).unwrap();
        drop(tx);
        assert_eq!(cursor(&s, "a").unwrap(), 1);
        let tx = s.write().unwrap();
        settle_change(&tx, "a", 2, 1, "k2", &refused).unwrap();
        tx.commit().unwrap();
        assert_eq!(scim_id(&s, "a", "k1").unwrap().as_deref(), Some("id1"));
        assert_eq!(scim_id(&s, "a", "k2").unwrap(), None);
        assert_eq!(
            key_of_user_id(&s, "a", "u2").unwrap().as_deref(),
            Some("k2")
        );
        let st = standing(&s, "a", 5).unwrap();
        assert_eq!((st.cursor, st.lag_changes, st.errors), (2, 0, 1));
        assert_eq!(st.last_errors[0].key, "k2");

        assert_eq!(mark_resync(&s, "a").unwrap(), 2);
        assert_eq!(resync_batch(&s, "a", 10).unwrap(), ["k1", "k2"]);
        settle_resync(&s, "a", "k1", &Outcome::Gone).unwrap();
        assert_eq!(resync_batch(&s, "a", 10).unwrap(), ["k2"]);
        assert_eq!(scim_id(&s, "a", "k1").unwrap(), None);
    }

    #[test]
    fn a_manager_is_found_by_user_id_whether_or_not_it_is_their_key() {
        // Tenant `a` is keyed by user_id (key = user_id), tenant `e` by
        // email; only `e`'s users are in the index by user_id.
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("t.db")).unwrap();
        s.sql()
            .execute_batch(
                "INSERT INTO users (tenant, key, user_id, email, created_job, updated_job, created_at, updated_at)
                   VALUES ('a', 'm1', 'm1', 'm1@x', 1, 1, 't', 't'),
                          ('e', 'm1@x', 'm1', 'm1@x', 1, 1, 't', 't'),
                          ('e', 'm2', NULL, 'm2', 1, 1, 't', 't');",
            )
            .unwrap();
        assert_eq!(
            key_of_user_id(&s, "a", "m1").unwrap().as_deref(),
            Some("m1")
        );
        assert_eq!(
            key_of_user_id(&s, "e", "m1").unwrap().as_deref(),
            Some("m1@x")
        );
        assert_eq!(key_of_user_id(&s, "e", "m2").unwrap(), None, "no user_id");
        assert_eq!(key_of_user_id(&s, "a", "m9").unwrap(), None);
        let indexed: i64 = s
            .sql()
            .query_row(
                "SELECT count(*) FROM users INDEXED BY users_tenant_user_id
                 WHERE tenant IN ('a', 'e') AND user_id IS NOT NULL AND user_id <> key",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexed, 1);
        let dn = ("cn=M1".to_string(), "m1".to_string());
        crate::store::users::set_dns(&s, "e", std::iter::once((&dn.0, &dn.1))).unwrap();
        crate::store::users::set_dns(&s, "a", std::iter::once((&dn.0, &dn.1))).unwrap();
        let dns: i64 = s
            .sql()
            .query_row("SELECT count(*) FROM users WHERE dn = 'cn=M1'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(dns, 2);
    }
}
