//! The webhook deliveries: one row per job event and configured URL, its
//! JSON body rendered when the job finished, with its delivery state
//! (`queued → sent`, or `failed` once given up), its attempts and when to
//! try next. Senders claim due rows with a lease in one statement, so two
//! senders never hold the same delivery. This module must never render a
//! body, hold a secret or talk to the network: it stores bytes and states.

use rusqlite::params;

use super::outbox::{ms_text, now_ms};
use super::{Db, StoreError};

/// A delivery to queue, due at once.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    pub tenant: &'a str,
    pub job: i64,
    pub event: &'a str,
    pub url: &'a str,
    pub body: &'a [u8],
    /// Given up after this instant (ms).
    pub expires_at: i64,
}

pub fn insert(db: &impl Db, d: &NewDelivery<'_>) -> Result<i64, StoreError> {
    let conn = db.sql();
    let now = now_ms();
    conn.prepare_cached(
        "INSERT INTO webhooks (tenant, job_id, event, url, body, next_attempt_at, expires_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        d.tenant,
        d.job,
        d.event,
        d.url,
        d.body,
        now,
        d.expires_at,
        ms_text(now)
    ])?;
    Ok(conn.last_insert_rowid())
}

/// A delivery a sender holds.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub tenant: String,
    pub job: Option<i64>,
    pub event: String,
    pub url: String,
    pub body: Vec<u8>,
    /// Attempts before this one.
    pub attempts: i64,
    pub expires_at: i64,
}

/// Claims up to `limit` due queued deliveries with ids above `after`,
/// oldest first, that no other sender holds, until `lease_until`.
pub fn claim(
    db: &impl Db,
    now: i64,
    lease_until: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<Claimed>, StoreError> {
    let conn = db.sql();
    let mut stmt = conn.prepare_cached(
        "UPDATE webhooks SET lease_until = ?2
         WHERE id IN (
             SELECT id FROM webhooks
             WHERE state = 'queued' AND id > ?3
               AND (lease_until IS NULL OR lease_until <= ?1)
               AND next_attempt_at <= ?1
             ORDER BY id LIMIT ?4)
         RETURNING id, tenant, job_id, event, url, body, attempts, expires_at",
    )?;
    let mut out = stmt
        .query_map(params![now, lease_until, after, limit], |r| {
            Ok(Claimed {
                id: r.get(0)?,
                tenant: r.get(1)?,
                job: r.get(2)?,
                event: r.get(3)?,
                url: r.get(4)?,
                body: r.get(5)?,
                attempts: r.get(6)?,
                expires_at: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by_key(|c| c.id);
    Ok(out)
}

/// Gives a claimed delivery back untried (its sender is stopping).
pub fn release(db: &impl Db, id: i64) -> Result<(), StoreError> {
    db.sql()
        .prepare_cached("UPDATE webhooks SET lease_until = NULL WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// The receiver answered 2xx: it is never sent again.
pub fn mark_sent(db: &impl Db, id: i64, now: i64, status: u16) -> Result<(), StoreError> {
    db.sql()
        .prepare_cached(
            "UPDATE webhooks SET state = 'sent', attempts = attempts + 1, lease_until = NULL,
                 last_error = NULL, last_status = ?3, last_attempt_at = ?2, sent_at = ?2 WHERE id = ?1",
        )?
        .execute(params![id, ms_text(now), status])?;
    Ok(())
}

/// The attempt failed; try again at `next`.
pub fn mark_retry(
    db: &impl Db,
    id: i64,
    now: i64,
    next: i64,
    error: &str,
    status: Option<u16>,
) -> Result<(), StoreError> {
    db.sql()
        .prepare_cached(
            "UPDATE webhooks SET attempts = attempts + 1, lease_until = NULL, next_attempt_at = ?3,
                 last_error = ?4, last_status = ?5, last_attempt_at = ?2 WHERE id = ?1",
        )?
        .execute(params![id, ms_text(now), next, error, status])?;
    Ok(())
}

/// The attempt failed past the delivery's expiry: given up.
pub fn mark_failed(
    db: &impl Db,
    id: i64,
    now: i64,
    error: &str,
    status: Option<u16>,
) -> Result<(), StoreError> {
    db.sql()
        .prepare_cached(
            "UPDATE webhooks SET state = 'failed', attempts = attempts + 1, lease_until = NULL,
                 last_error = ?3, last_status = ?4, last_attempt_at = ?2, failed_at = ?2 WHERE id = ?1",
        )?
        .execute(params![id, ms_text(now), error, status])?;
    Ok(())
}

/// When the next queued delivery is due (its lease end if one is held), if any.
pub fn next_due(db: &impl Db) -> Result<Option<i64>, StoreError> {
    Ok(db.sql().query_row(
        "SELECT MIN(MAX(next_attempt_at, COALESCE(lease_until, 0))) FROM webhooks WHERE state = 'queued'",
        [],
        |r| r.get(0),
    )?)
}

/// What `userdrop webhooks` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    pub tenant: String,
    pub job: Option<i64>,
    pub event: String,
    pub url: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub expires_at: i64,
    pub last_error: Option<String>,
    pub last_status: Option<i64>,
    pub created_at: String,
    pub last_attempt_at: Option<String>,
    pub sent_at: Option<String>,
    pub failed_at: Option<String>,
    pub size: i64,
}

/// Deliveries newest first, of one state or all.
pub fn list(db: &impl Db, state: Option<&str>, limit: i64) -> Result<Vec<Entry>, StoreError> {
    let mut stmt = db.sql().prepare(
        "SELECT id, tenant, job_id, event, url, state, attempts, next_attempt_at, expires_at,
                last_error, last_status, created_at, last_attempt_at, sent_at, failed_at, length(body)
         FROM webhooks WHERE ?1 IS NULL OR state = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![state, limit], |r| {
            Ok(Entry {
                id: r.get(0)?,
                tenant: r.get(1)?,
                job: r.get(2)?,
                event: r.get(3)?,
                url: r.get(4)?,
                state: r.get(5)?,
                attempts: r.get(6)?,
                next_attempt_at: r.get(7)?,
                expires_at: r.get(8)?,
                last_error: r.get(9)?,
                last_status: r.get(10)?,
                created_at: r.get(11)?,
                last_attempt_at: r.get(12)?,
                sent_at: r.get(13)?,
                failed_at: r.get(14)?,
                size: r.get(15)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Per tenant, what its deliveries' attempts came to, for the metrics'
/// counters: each only grows as long as the rows are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcomes {
    pub tenant: String,
    /// Attempts the receiver answered 2xx.
    pub delivered: u64,
    /// Failed attempts followed by another try.
    pub retried: u64,
    /// Deliveries given up.
    pub gave_up: u64,
}

pub fn outcomes(db: &impl Db) -> Result<Vec<Outcomes>, StoreError> {
    // Every attempt of a queued row failed and was retried; a sent or
    // failed row's last attempt is its delivery or its giving up.
    let mut stmt = db.sql().prepare(
        "SELECT tenant,
                SUM(state = 'sent'),
                SUM(CASE WHEN state = 'queued' THEN attempts ELSE MAX(attempts - 1, 0) END),
                SUM(state = 'failed')
         FROM webhooks GROUP BY tenant ORDER BY tenant",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok(Outcomes {
                tenant: r.get(0)?,
                delivered: r.get::<_, i64>(1)?.max(0) as u64,
                retried: r.get::<_, i64>(2)?.max(0) as u64,
                gave_up: r.get::<_, i64>(3)?.max(0) as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_claimed_delivery_is_held_until_its_lease_ends_and_counted_by_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("db")).unwrap();
        let now = now_ms();
        let id = insert(
            &s,
            &NewDelivery {
                tenant: "acme",
                job: 0,
                event: "job.held",
                url: "http://127.0.0.1:9/h",
                body: b"{}",
                expires_at: now + 60_000,
            },
        );
        // job 0 is no ledger row: foreign keys refuse it.
        assert!(id.is_err());
        let job = crate::store::jobs::create(&s, "acme", "f.csv", "cli", "f.csv").unwrap();
        let id = insert(
            &s,
            &NewDelivery {
                tenant: "acme",
                job,
                event: "job.held",
                url: "http://127.0.0.1:9/h",
                body: b"{\"event\":\"job.held\"}",
                expires_at: now + 60_000,
            },
        )
        .unwrap();
        // Due from its insertion on.
        let now = now_ms();
        let got = claim(&s, now, now + 500, 0, 10).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body, b"{\"event\":\"job.held\"}");
        assert!(claim(&s, now, now + 500, 0, 10).unwrap().is_empty());
        assert_eq!(claim(&s, now + 500, now + 900, 0, 10).unwrap().len(), 1);
        mark_retry(&s, id, now, now + 1_000, "HTTP 500", Some(500)).unwrap();
        assert!(claim(&s, now + 1, now + 2, 0, 10).unwrap().is_empty());
        assert_eq!(next_due(&s).unwrap(), Some(now + 1_000));
        let o = outcomes(&s).unwrap();
        assert_eq!((o[0].delivered, o[0].retried, o[0].gave_up), (0, 1, 0));
        mark_sent(&s, id, now, 204).unwrap();
        let e = &list(&s, Some("sent"), 10).unwrap()[0];
        assert_eq!((e.state.as_str(), e.attempts), ("sent", 2));
        assert_eq!(e.last_status, Some(204));
        let o = outcomes(&s).unwrap();
        assert_eq!((o[0].delivered, o[0].retried, o[0].gave_up), (1, 1, 0));
        assert_eq!(next_due(&s).unwrap(), None);
    }
}
