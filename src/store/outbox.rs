//! The mail outbox: one row per message, rendered when its job finished,
//! with its delivery state (`queued → sent`, or `failed` once given up),
//! its attempts and when to try next. Senders claim due rows with a lease
//! in one statement, so two senders never hold the same message. This
//! module must never compose or send mail: it stores bytes and states.

use rusqlite::{params, OptionalExtension};

use super::{Db, StoreError};

/// Milliseconds since the Unix epoch: what scheduling columns hold.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `ms` as the stored text form of times (RFC 3339, UTC, seconds).
pub fn ms_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// A message to queue. Its content is set by [`set_message`] once its id
/// (part of its Message-ID) is known, in the same transaction.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub tenant: &'a str,
    pub job: Option<i64>,
    pub kind: &'a str,
    /// Due at once; given up after this instant (ms).
    pub expires_at: i64,
}

pub fn insert(db: &impl Db, m: &NewMessage<'_>) -> Result<i64, StoreError> {
    let conn = db.sql();
    let now = now_ms();
    conn.prepare_cached(
        "INSERT INTO outbox (tenant, job_id, kind, envelope_from, recipients, subject, next_attempt_at, expires_at, created_at)
         VALUES (?1, ?2, ?3, '', '[]', '', ?4, ?5, ?6)",
    )?
    .execute(params![m.tenant, m.job, m.kind, now, m.expires_at, ms_text(now)])?;
    Ok(conn.last_insert_rowid())
}

/// A rendered message and its envelope.
#[derive(Debug, Clone)]
pub struct Content<'a> {
    pub message_id: &'a str,
    pub envelope_from: &'a str,
    pub recipients: &'a [String],
    pub subject: &'a str,
    pub bytes: &'a [u8],
}

pub fn set_message(db: &impl Db, id: i64, c: &Content<'_>) -> Result<(), StoreError> {
    let conn = db.sql();
    let recipients = serde_json::to_string(c.recipients).map_err(|source| StoreError::Json {
        column: "recipients",
        source,
    })?;
    conn.prepare_cached(
        "UPDATE outbox SET message_id = ?2, envelope_from = ?3, recipients = ?4, subject = ?5, message = ?6 WHERE id = ?1",
    )?
    .execute(params![id, c.message_id, c.envelope_from, recipients, c.subject, c.bytes])?;
    Ok(())
}

/// A message a sender holds.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub tenant: String,
    pub job: Option<i64>,
    pub kind: String,
    pub envelope_from: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub message: Vec<u8>,
    /// Attempts before this one.
    pub attempts: i64,
    pub expires_at: i64,
}

/// Claims up to `limit` queued messages with ids above `after`, oldest
/// first, that no other sender holds: due ones only, or every one with
/// `everything` (an operator's flush). The lease keeps them from other
/// senders until `lease_until`.
pub fn claim(
    db: &impl Db,
    now: i64,
    lease_until: i64,
    everything: bool,
    after: i64,
    limit: i64,
) -> Result<Vec<Claimed>, StoreError> {
    let conn = db.sql();
    let mut stmt = conn.prepare_cached(
        "UPDATE outbox SET lease_until = ?2
         WHERE id IN (
             SELECT id FROM outbox
             WHERE state = 'queued' AND id > ?4
               AND (lease_until IS NULL OR lease_until <= ?1)
               AND (?3 OR next_attempt_at <= ?1)
             ORDER BY id LIMIT ?5)
         RETURNING id, tenant, job_id, kind, envelope_from, recipients, subject, message, attempts, expires_at",
    )?;
    let mut rows = stmt.query(params![now, lease_until, everything, after, limit])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let recipients: String = r.get(5)?;
        out.push(Claimed {
            id: r.get(0)?,
            tenant: r.get(1)?,
            job: r.get(2)?,
            kind: r.get(3)?,
            envelope_from: r.get(4)?,
            recipients: serde_json::from_str(&recipients).map_err(|source| StoreError::Json {
                column: "recipients",
                source,
            })?,
            subject: r.get(6)?,
            message: r.get(7)?,
            attempts: r.get(8)?,
            expires_at: r.get(9)?,
        });
    }
    drop(rows);
    out.sort_by_key(|c| c.id);
    Ok(out)
}

/// Gives a claimed message back untried (its sender is stopping).
pub fn release(db: &impl Db, id: i64) -> Result<(), StoreError> {
    let conn = db.sql();
    conn.prepare_cached("UPDATE outbox SET lease_until = NULL WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// The server took the message: it is never sent again.
pub fn mark_sent(db: &impl Db, id: i64, now: i64) -> Result<(), StoreError> {
    let conn = db.sql();
    conn.prepare_cached(
        "UPDATE outbox SET state = 'sent', attempts = attempts + 1, lease_until = NULL,
             last_error = NULL, last_attempt_at = ?2, sent_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, ms_text(now)])?;
    Ok(())
}

/// The attempt failed; try again at `next`.
pub fn mark_retry(
    db: &impl Db,
    id: i64,
    now: i64,
    next: i64,
    error: &str,
) -> Result<(), StoreError> {
    let conn = db.sql();
    conn.prepare_cached(
        "UPDATE outbox SET attempts = attempts + 1, lease_until = NULL, next_attempt_at = ?3,
             last_error = ?4, last_attempt_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, ms_text(now), next, error])?;
    Ok(())
}

/// The attempt failed past the message's expiry: given up.
pub fn mark_failed(db: &impl Db, id: i64, now: i64, error: &str) -> Result<(), StoreError> {
    let conn = db.sql();
    conn.prepare_cached(
        "UPDATE outbox SET state = 'failed', attempts = attempts + 1, lease_until = NULL,
             last_error = ?3, last_attempt_at = ?2, failed_at = ?2 WHERE id = ?1",
    )?
    .execute(params![id, ms_text(now), error])?;
    Ok(())
}

/// When the next queued message is due (its lease end if one is held), if any.
pub fn next_due(db: &impl Db) -> Result<Option<i64>, StoreError> {
    let conn = db.sql();
    Ok(conn.query_row(
        "SELECT MIN(MAX(next_attempt_at, COALESCE(lease_until, 0))) FROM outbox WHERE state = 'queued'",
        [],
        |r| r.get(0),
    )?)
}

/// What `userdrop mail` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    pub tenant: String,
    pub job: Option<i64>,
    pub kind: String,
    pub message_id: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub expires_at: i64,
    pub last_error: Option<String>,
    pub created_at: String,
    pub last_attempt_at: Option<String>,
    pub sent_at: Option<String>,
    pub failed_at: Option<String>,
    pub size: i64,
}

const ENTRY: &str = "id, tenant, job_id, kind, message_id, recipients, subject, state, attempts,
    next_attempt_at, expires_at, last_error, created_at, last_attempt_at, sent_at, failed_at, length(message)";

fn entry_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    let recipients: String = r.get(5)?;
    Ok(Entry {
        id: r.get(0)?,
        tenant: r.get(1)?,
        job: r.get(2)?,
        kind: r.get(3)?,
        message_id: r.get(4)?,
        recipients: serde_json::from_str(&recipients).unwrap_or_else(|_| vec![recipients]),
        subject: r.get(6)?,
        state: r.get(7)?,
        attempts: r.get(8)?,
        next_attempt_at: r.get(9)?,
        expires_at: r.get(10)?,
        last_error: r.get(11)?,
        created_at: r.get(12)?,
        last_attempt_at: r.get(13)?,
        sent_at: r.get(14)?,
        failed_at: r.get(15)?,
        size: r.get(16)?,
    })
}

/// How many messages are in `state`.
pub fn count(db: &impl Db, state: &str) -> Result<i64, StoreError> {
    let conn = db.sql();
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM outbox WHERE state = ?1",
        [state],
        |r| r.get(0),
    )?)
}

/// Messages newest first, of one state or all.
pub fn list(db: &impl Db, state: Option<&str>, limit: i64) -> Result<Vec<Entry>, StoreError> {
    let conn = db.sql();
    let mut stmt = conn.prepare(&format!(
        "SELECT {ENTRY} FROM outbox WHERE ?1 IS NULL OR state = ?1 ORDER BY id DESC LIMIT ?2"
    ))?;
    let rows = stmt
        .query_map(params![state, limit], entry_from)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub fn get(db: &impl Db, id: i64) -> Result<Option<Entry>, StoreError> {
    let conn = db.sql();
    Ok(conn
        .query_row(
            &format!("SELECT {ENTRY} FROM outbox WHERE id = ?1"),
            [id],
            entry_from,
        )
        .optional()?)
}

/// The rendered message, as sent.
pub fn message(db: &impl Db, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
    let conn = db.sql();
    Ok(conn
        .query_row("SELECT message FROM outbox WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Puts a message back in the queue, due now, with a fresh expiry and a
/// fresh backoff. Returns false when there is no such message.
pub fn requeue(db: &impl Db, id: i64, now: i64, expires_at: i64) -> Result<bool, StoreError> {
    let conn = db.sql();
    let n = conn.execute(
        "UPDATE outbox SET state = 'queued', attempts = 0, next_attempt_at = ?2, expires_at = ?3,
             lease_until = NULL, failed_at = NULL WHERE id = ?1",
        params![id, now, expires_at],
    )?;
    Ok(n == 1)
}

/// The recipient of an invitation: the user a job just created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invitee {
    pub user_id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

pub fn invitee(db: &impl Db, tenant: &str, key: &str) -> Result<Option<Invitee>, StoreError> {
    let conn = db.sql();
    Ok(conn
        .prepare_cached(
            "SELECT user_id, email, first_name, last_name FROM users WHERE tenant = ?1 AND key = ?2",
        )?
        .query_row(params![tenant, key], |r| {
            Ok(Invitee {
                user_id: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                email: r.get(1)?,
                first_name: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                last_name: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
            })
        })
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn queue(conn: &Store, expires_at: i64) -> i64 {
        let id = insert(
            conn,
            &NewMessage {
                tenant: "acme",
                job: None,
                kind: "failure",
                expires_at,
            },
        )
        .unwrap();
        set_message(
            conn,
            id,
            &Content {
                message_id: "<m@x>",
                envelope_from: "noreply@example.com",
                recipients: &["it@acme.example".to_string()],
                subject: "s",
                bytes: b"Subject: s\r\n\r\nbody\r\n",
            },
        )
        .unwrap();
        id
    }

    #[test]
    fn a_claimed_message_is_held_until_its_lease_ends() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("db")).unwrap();
        let now = now_ms();
        let id = queue(&s, now + 1000);
        let got = claim(&s, now, now + 500, false, 0, 10).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].recipients, vec!["it@acme.example".to_string()]);
        assert!(claim(&s, now, now + 500, true, 0, 10).unwrap().is_empty());
        // The holder died: the message is claimable again after the lease.
        assert_eq!(
            claim(&s, now + 500, now + 900, false, 0, 10).unwrap().len(),
            1
        );
        mark_retry(&s, id, now, now + 30_000, "down").unwrap();
        assert!(claim(&s, now + 1, now + 2, false, 0, 10)
            .unwrap()
            .is_empty());
        assert_eq!(claim(&s, now + 1, now + 2, true, 0, 10).unwrap().len(), 1);
        mark_sent(&s, id, now).unwrap();
        let e = get(&s, id).unwrap().unwrap();
        assert_eq!((e.state.as_str(), e.attempts), ("sent", 2));
        assert_eq!(next_due(&s).unwrap(), None);
    }
}
