//! Users and roles of a tenant: the reads an import plans with (a compact
//! scan of who exists), the writes it applies (one prepared upsert built for
//! the columns the file has, deletes, sync deactivation), and the export.
//! Only columns present in the file are ever written, so a file without a
//! `country` column never blanks anyone's country. Every change it makes to
//! a user is recorded in the change ledger ([`changes`]) by the same
//! function, in the same transaction. This module must never open a
//! transaction itself (the caller's job transaction holds them all), nor
//! change a user without recording it.

use rusqlite::types::Value;
use rusqlite::{params, OptionalExtension, Statement};

pub use super::directory::{all_users, for_each_user, users_matching, Select, User};
use super::{changes, Db, StoreError};
use crate::ingest::schema::{FieldKind, Schema};
use crate::ingest::validate::{Cell, ValidRow};

/// A 96-bit hash as three words: what plans compare instead of strings, so
/// that a million users fit in a few tens of MB (16 bytes with a row index;
/// 128 bits as two u64 made it 24, and the memory an import touches for
/// the first time is a large part of its time). Two of a million strings
/// share one with odds of about 2^-57.
pub type Hash = [u32; 3];

pub fn hash96(s: &str) -> Hash {
    let h = xxhash_rust::xxh3::xxh3_128(s.as_bytes());
    [(h >> 96) as u32, (h >> 64) as u32, (h >> 32) as u32]
}

/// A hash as one number that orders like the hash: sorting a million
/// hashes by it takes a third less time than comparing word by word.
pub fn hash_order([a, b, c]: Hash) -> u128 {
    (u128::from(a) << 64) | (u128::from(b) << 32) | u128::from(c)
}

/// The column a built-in field is stored in.
pub fn column_of(kind: FieldKind) -> Option<&'static str> {
    Some(match kind {
        FieldKind::UserId => "user_id",
        FieldKind::Email => "email",
        FieldKind::FirstName => "first_name",
        FieldKind::LastName => "last_name",
        FieldKind::Enabled => "enabled",
        FieldKind::Roles => "roles",
        FieldKind::ReportsTo => "reports_to",
        FieldKind::TaskNotification => "task_notification",
        FieldKind::NotifyIfNewUser => "notify_if_new_user",
        FieldKind::MobileNumber => "mobile_number",
        FieldKind::Country => "country",
        FieldKind::State => "state",
        FieldKind::LastActiveDate => "last_active_date",
        FieldKind::Transaction | FieldKind::Tenant | FieldKind::Custom => return None,
    })
}

/// Who a tenant has, as hashes, sorted for binary search.
#[derive(Debug, Default)]
pub struct Existing {
    /// (key hash, fingerprint of the row that last wrote the user or 0).
    pub keys: Vec<(Hash, i64)>,
    /// Hashes of every stored user_id; empty when the key is the user_id
    /// (then `keys` answers).
    user_ids: Vec<Hash>,
    key_is_user_id: bool,
}

impl Existing {
    pub fn load(db: &impl Db, tenant: &str, key_is_user_id: bool) -> Result<Existing, StoreError> {
        let conn = db.sql();
        let mut stmt = conn.prepare_cached(
            "SELECT key, row_hash, user_id FROM users NOT INDEXED WHERE tenant = ?1",
        )?;
        let mut rows = stmt.query([tenant])?;
        let mut out = Existing {
            key_is_user_id,
            ..Default::default()
        };
        while let Some(r) = rows.next()? {
            let key = r.get_ref(0)?.as_str()?;
            out.keys
                .push((hash96(key), r.get::<_, Option<i64>>(1)?.unwrap_or(0)));
            if !key_is_user_id {
                if let Some(uid) = r.get_ref(2)?.as_str_or_null()? {
                    out.user_ids.push(hash96(uid));
                }
            }
        }
        out.keys.sort_unstable_by_key(|&(h, _)| hash_order(h));
        out.user_ids.sort_unstable_by_key(|&h| hash_order(h));
        Ok(out)
    }

    /// The stored fingerprint of a key, or None when no such user exists.
    pub fn fingerprint(&self, key_hash: Hash) -> Option<i64> {
        self.keys
            .binary_search_by(|(k, _)| k.cmp(&key_hash))
            .ok()
            .map(|i| self.keys[i].1)
    }

    pub fn has_user_id(&self, uid_hash: Hash) -> bool {
        if self.key_is_user_id {
            self.fingerprint(uid_hash).is_some()
        } else {
            self.user_ids.binary_search(&uid_hash).is_ok()
        }
    }

    pub fn count(&self) -> usize {
        self.keys.len()
    }
}

/// What happened to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Added,
    Updated,
    /// The stored values already matched.
    Unchanged,
}

/// Why the store refused a row the plan thought valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Insert mode, and the key exists.
    KeyExists,
    /// Another user of the tenant has this email.
    EmailTaken,
}

/// The prepared write of one job: the column list is fixed by the file's header.
///
/// New users get a plain INSERT and known users a conditional UPDATE, rather
/// than one UPSERT with RETURNING: the plan already knows from [`Existing`]
/// which keys are stored, and the plain statements are what keeps a
/// million-row import near the speed of a bare insert loop.
pub struct Writer<'c> {
    insert: Statement<'c>,
    /// Changes a user only when a value differs, so a row whose fingerprint
    /// differs (other columns, a deactivated user) but whose values match is
    /// reported unchanged and not rewritten.
    ///
    /// No statement here has a RETURNING clause, and the users table has no
    /// trigger: SQLite runs RETURNING as a trigger, and a statement with a
    /// trigger gets a statement journal, which under the job's savepoint
    /// cost a changed file of a million users a third more time. The change
    /// ledger reads the values before and after with `before` instead.
    update: Statement<'c>,
    /// A stored user's tracked values, for the change ledger.
    before: Statement<'c>,
    /// The whole user about to be deleted, for the change ledger.
    removed: Statement<'c>,
    delete: Statement<'c>,
    park: Statement<'c>,
    /// The values of users whose email [`Writer::park_email`] replaced by a
    /// placeholder, by key, from before the park: what their change says
    /// they were.
    parked: std::collections::HashMap<String, changes::Image>,
    /// Records the fingerprint of a row that matched the stored values, so
    /// the next identical file takes the fast path.
    remember: Statement<'c>,
    add_role: Statement<'c>,
    ctx: Ctx,
    /// Records a single creation in the change ledger (updates and
    /// deletions are recorded through [`changes`], with their values).
    record_created: Statement<'c>,
    /// Records up to [`CREATED_AT_ONCE`] creations as one row of the
    /// ledger: a million rows of their own cost a fresh import of a million
    /// users a third of its time.
    record_created_run: Statement<'c>,
    /// Keys created and not yet recorded, one after another, in the order
    /// they were created (each ends at its offset in `created_ends`: a key
    /// may hold any character); recorded before any other change, so the
    /// ledger keeps the order things happened in.
    created: String,
    created_ends: Vec<usize>,
    conn: &'c rusqlite::Connection,
}

/// How many creations [`Writer`] records in one row of the ledger.
const CREATED_AT_ONCE: usize = 128;

/// What every bound row shares.
struct Ctx {
    /// Schema field index of each present built-in column, in parameter order.
    columns: Vec<usize>,
    lad: Option<usize>,
    /// Whether the file has a column for a custom field (only then do rows
    /// carry attributes).
    custom: bool,
    tenant: String,
    job: i64,
    now: String,
    today: String,
}

impl Ctx {
    fn by(&self) -> changes::By<'_> {
        changes::By {
            tenant: &self.tenant,
            job: self.job,
            at: &self.now,
        }
    }

    /// Binds what every row of the job shares (?1 tenant, ?4 job, ?5 now,
    /// ?8 today, and ?6 when the file has no custom field), once: SQLite
    /// keeps a statement's bindings from one run to the next, and copies
    /// each text bound.
    fn bind_job(&self, s: &mut Statement<'_>) -> rusqlite::Result<()> {
        if !self.custom {
            // No column of the file is a custom field: no row has attributes.
            s.raw_bind_parameter(6, "{}")?;
        }
        s.raw_bind_parameter(1, &self.tenant)?;
        s.raw_bind_parameter(4, self.job)?;
        s.raw_bind_parameter(5, &self.now)?;
        s.raw_bind_parameter(8, &self.today)
    }

    /// Binds one row (the job's own parameters are bound by `bind_job`).
    fn bind(
        &self,
        s: &mut Statement<'_>,
        text: &str,
        values: &[Bound],
        e: &Encoded,
    ) -> rusqlite::Result<()> {
        let t = |(a, b): (u32, u32)| &text[a as usize..b as usize];
        s.raw_bind_parameter(2, t(e.key))?;
        s.raw_bind_parameter(3, e.fingerprint)?;
        match e.attributes {
            Some(range) => s.raw_bind_parameter(6, t(range))?,
            None if self.custom => s.raw_bind_parameter(6, "{}")?,
            None => {}
        }
        let row = &values[e.values as usize..];
        match self.lad.map(|i| row[i]) {
            Some(v) => bind_value(s, 7, text, v)?,
            None => s.raw_bind_parameter(7, rusqlite::types::Null)?,
        }
        for (n, i) in self.columns.iter().enumerate() {
            bind_value(s, n + 9, text, row[*i])?;
        }
        Ok(())
    }
}

/// A value ready to bind: text lives in a batch's arena, so that rows cross
/// from the reader thread to the writer without one allocation each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Null,
    Int(i64),
    /// A range of the batch's text.
    Text(u32, u32),
}

/// One valid row encoded into a batch: its values (one per schema field,
/// starting at `values`) and the extras the writer needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoded {
    pub key: (u32, u32),
    pub fingerprint: i64,
    pub delete: bool,
    pub values: u32,
    /// The tenant's own fields as a JSON object; None when the file has none.
    pub attributes: Option<(u32, u32)>,
    /// Role names separated by NUL, for the tenant's role catalogue.
    pub roles: (u32, u32),
    pub notify_if_new_user: bool,
}

fn push_text(text: &mut String, s: &str) -> (u32, u32) {
    let a = text.len() as u32;
    text.push_str(s);
    (a, text.len() as u32)
}

/// Encodes a valid row for [`Writer::write`]: values in schema order.
pub fn encode(
    schema: &Schema,
    row: &ValidRow<'_>,
    text: &mut String,
    values: &mut Vec<Bound>,
) -> Encoded {
    let start = values.len() as u32;
    let mut roles = (text.len() as u32, text.len() as u32);
    let mut notify = false;
    let mut custom: Option<serde_json::Map<String, serde_json::Value>> = None;
    for (f, cell) in schema.fields.iter().zip(&row.cells) {
        let v = match cell {
            Cell::Absent | Cell::Empty => Bound::Null,
            Cell::Bool(b) => Bound::Int(*b as i64),
            Cell::Text(t) => {
                let (a, b) = push_text(text, t);
                Bound::Text(a, b)
            }
            Cell::Date(d) => {
                let a = text.len() as u32;
                use std::fmt::Write;
                let _ = write!(text, "{}", d.format("%Y-%m-%d"));
                Bound::Text(a, text.len() as u32)
            }
            Cell::Roles(r) => {
                let a = text.len() as u32;
                text.push('[');
                for (n, name) in r.iter().enumerate() {
                    if n > 0 {
                        text.push(',');
                    }
                    // Role names have no whitespace; JSON-escape the rest.
                    text.push_str(&serde_json::Value::String(name.to_string()).to_string());
                }
                text.push(']');
                let b = text.len() as u32;
                let ra = text.len() as u32;
                for (n, name) in r.iter().enumerate() {
                    if n > 0 {
                        text.push('\0');
                    }
                    text.push_str(name);
                }
                roles = (ra, text.len() as u32);
                Bound::Text(a, b)
            }
        };
        if f.kind == FieldKind::NotifyIfNewUser {
            notify = matches!(cell, Cell::Bool(true));
        }
        if f.kind == FieldKind::Custom && !matches!(cell, Cell::Absent) {
            let json = match cell {
                Cell::Text(t) => serde_json::Value::String(t.to_string()),
                _ => serde_json::Value::Null,
            };
            custom
                .get_or_insert_with(Default::default)
                .insert(f.name.clone(), json);
        }
        values.push(v);
    }
    let attributes = custom.map(|m| push_text(text, &serde_json::Value::Object(m).to_string()));
    let key = push_text(text, &row.key);
    Encoded {
        key,
        fingerprint: row.fingerprint(),
        delete: row.delete,
        values: start,
        attributes,
        roles,
        notify_if_new_user: notify,
    }
}

/// Sorts a constraint failure into the refusal a customer can act on.
fn refused<T>(result: rusqlite::Result<T>) -> Result<Result<T, Refused>, StoreError> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(rusqlite::Error::SqliteFailure(e, Some(msg)))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            if msg.contains("users.email") {
                Ok(Err(Refused::EmailTaken))
            } else if msg.contains("users.key") {
                Ok(Err(Refused::KeyExists))
            } else {
                Err(rusqlite::Error::SqliteFailure(e, Some(msg)).into())
            }
        }
        Err(e) => Err(e.into()),
    }
}

impl<'c> Writer<'c> {
    /// `present[i]` says whether the file has a column for schema field `i`.
    pub fn prepare(
        db: &'c impl Db,
        schema: &Schema,
        present: &[bool],
        tenant: &str,
        job: i64,
    ) -> Result<Writer<'c>, StoreError> {
        let conn = db.sql();
        let mut columns = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        let mut custom = Vec::new();
        let mut lad = None;
        for (i, f) in schema.fields.iter().enumerate() {
            if !present[i] {
                continue;
            }
            if f.kind == FieldKind::Custom {
                custom.push((i, f.name.clone()));
            } else if f.kind == FieldKind::LastActiveDate {
                lad = Some(i);
            } else if let Some(col) = column_of(f.kind) {
                columns.push(i);
                names.push(col);
            }
        }
        // ?1 tenant, ?2 key, ?3 row_hash, ?4 job, ?5 now, ?6 attributes
        // (JSON; a null value clears), ?7 last_active_date given or NULL,
        // ?8 today, then one parameter per present column.
        let mut insert_cols = String::from(
            "tenant, key, row_hash, created_job, updated_job, created_at, updated_at, attributes, last_active_date",
        );
        // json_patch drops the null values of cleared fields on insert.
        let attributes = if custom.is_empty() {
            "?6"
        } else {
            "json_patch('{}', ?6)"
        };
        let mut insert_vals = format!("?1, ?2, ?3, ?4, ?4, ?5, ?5, {attributes}, COALESCE(?7, ?8)");
        let mut sets = String::from("row_hash = ?3, updated_job = ?4, updated_at = ?5");
        let mut changed: Vec<String> = Vec::new();
        if !custom.is_empty() {
            sets.push_str(", attributes = json_patch(attributes, ?6)");
            changed.push("json_patch(attributes, ?6) IS NOT attributes".into());
        }
        if lad.is_some() {
            sets.push_str(", last_active_date = COALESCE(?7, last_active_date)");
            changed.push("COALESCE(?7, last_active_date) IS NOT last_active_date".into());
        }
        for (n, col) in names.iter().enumerate() {
            let p = n + 9;
            insert_cols.push_str(&format!(", {col}"));
            insert_vals.push_str(&format!(", ?{p}"));
            sets.push_str(&format!(", {col} = ?{p}"));
            changed.push(format!("{col} IS NOT ?{p} COLLATE BINARY"));
        }
        let condition = if changed.is_empty() {
            "0".to_string()
        } else {
            changed.join(" OR ")
        };
        let insert = format!("INSERT INTO users ({insert_cols}) VALUES ({insert_vals})");
        // `?6 IS NOT NULL AND ?8 IS NOT NULL` only makes both parameters exist
        // in every variant of the statement, so both statements bind alike.
        let update = format!(
            "UPDATE users SET {sets} WHERE tenant = ?1 AND key = ?2 AND ({condition}) AND ?6 IS NOT NULL AND ?8 IS NOT NULL"
        );
        let mut record_created = conn.prepare(changes::RECORD_CREATED)?;
        let mut record_created_run = conn.prepare(changes::RECORD_CREATED_RUN)?;
        for s in [&mut record_created, &mut record_created_run] {
            s.raw_bind_parameter(1, tenant)?;
            s.raw_bind_parameter(2, job)?;
        }
        let ctx = Ctx {
            custom: !custom.is_empty(),
            columns,
            lad,
            tenant: tenant.to_string(),
            job,
            now: super::now_text(),
            today: chrono::Utc::now().format("%Y-%m-%d").to_string(),
        };
        let mut insert = conn.prepare(&insert)?;
        let mut update = conn.prepare(&update)?;
        ctx.bind_job(&mut insert)?;
        ctx.bind_job(&mut update)?;
        Ok(Writer {
            insert,
            update,
            before: conn.prepare(&format!(
                "SELECT {} FROM users WHERE tenant = ?1 AND key = ?2",
                changes::TRACKED_COLUMNS
            ))?,
            removed: conn.prepare(&format!(
                "SELECT {} FROM users WHERE tenant = ?1 AND key = ?2",
                changes::DELETED_COLUMNS
            ))?,
            delete: conn.prepare("DELETE FROM users WHERE tenant = ?1 AND key = ?2")?,
            park: conn.prepare(
                "UPDATE users SET email = char(1) || 'parked:' || id WHERE tenant = ?1 AND key = ?2",
            )?,
            parked: Default::default(),
            remember: conn
                .prepare("UPDATE users SET row_hash = ?3 WHERE tenant = ?1 AND key = ?2")?,
            add_role: conn.prepare(
                "INSERT OR IGNORE INTO roles (tenant, name, created_job) VALUES (?1, ?2, ?3)",
            )?,
            ctx,
            record_created,
            record_created_run,
            created: String::new(),
            created_ends: Vec::with_capacity(CREATED_AT_ONCE),
            conn,
        })
    }

    /// Writes the row's user. `stored` says whether the plan knows the key
    /// (a key whose hash is not among the stored ones is certainly new).
    pub fn write(
        &mut self,
        text: &str,
        values: &[Bound],
        e: &Encoded,
        stored: bool,
    ) -> Result<Result<Written, Refused>, StoreError> {
        let ctx = &self.ctx;
        let key = &text[e.key.0 as usize..e.key.1 as usize];
        // None when, with odds of 2^-96, the hash matched a different key.
        let before = match stored {
            true => self
                .before
                .query_row(params![ctx.tenant, key], |r| {
                    changes::image(r, 0, changes::TRACKED.len())
                })
                .optional()?,
            false => None,
        };
        if let Some(before) = before {
            let result = ctx
                .bind(&mut self.update, text, values, e)
                .and_then(|()| self.update.raw_execute());
            return Ok(match refused(result)? {
                Err(r) => Err(r),
                Ok(1) => {
                    let after = self.before.query_row(params![ctx.tenant, key], |r| {
                        changes::image(r, 0, changes::TRACKED.len())
                    })?;
                    // A parked user was, for the ledger, as before the park.
                    let before = self.parked.remove(key).unwrap_or(before);
                    self.record_creations()?;
                    let ctx = &self.ctx;
                    changes::record_update(self.conn, &ctx.by(), key, &before, &after)?;
                    Ok(Written::Updated)
                }
                Ok(_) => {
                    // The values already match.
                    self.remember
                        .execute(params![ctx.tenant, key, e.fingerprint])?;
                    Ok(Written::Unchanged)
                }
            });
        }
        let result = ctx
            .bind(&mut self.insert, text, values, e)
            .and_then(|_| self.insert.raw_execute());
        let written = refused(result)?.map(|_| Written::Added);
        if written.is_ok() {
            self.created.push_str(key);
            self.created_ends.push(self.created.len());
            if self.created_ends.len() == CREATED_AT_ONCE {
                self.record_creations()?;
            }
        }
        Ok(written)
    }

    /// Removes a user; false when there was none. The user_id of a removed
    /// user goes to `gone` (their reports are cleared at the job's end).
    pub fn delete(&mut self, key: &str, gone: &mut Vec<String>) -> Result<bool, StoreError> {
        let ctx = &self.ctx;
        let removed = self
            .removed
            .query_row(params![ctx.tenant, key], |r| {
                changes::image(r, 0, changes::TRACKED.len() + 1)
            })
            .optional()?;
        let Some(before) = removed else {
            return Ok(false);
        };
        self.delete.execute(params![ctx.tenant, key])?;
        self.record_creations()?;
        let ctx = &self.ctx;
        changes::record_deletion(self.conn, &ctx.by(), key, &before)?;
        if let Value::Text(uid) = &before[0] {
            gone.push(uid.clone());
        }
        Ok(true)
    }

    /// Gives a user a placeholder address no real one can equal (it holds
    /// a control character), freeing theirs within the transaction: the
    /// import parks one address of a ring of users who swap addresses, and
    /// the parked user's own row then writes its new address over it. The
    /// placeholder is no change of anyone's: that row's change records the
    /// address from before the park ([`Writer::finish`] records the
    /// park of a user whose row never came).
    pub fn park_email(&mut self, key: &str) -> Result<(), StoreError> {
        let ctx = &self.ctx;
        let n = changes::TRACKED.len();
        let before = self
            .before
            .query_row(params![ctx.tenant, key], |r| changes::image(r, 0, n))
            .optional()?;
        self.park.execute(params![ctx.tenant, key])?;
        if let Some(before) = before {
            self.parked.entry(key.to_string()).or_insert(before);
        }
        Ok(())
    }

    /// Records the creations not recorded yet, more than one as a run (?1
    /// tenant and ?2 job were bound once, by `prepare`).
    fn record_creations(&mut self) -> Result<(), StoreError> {
        let starts = std::iter::once(0).chain(self.created_ends.iter().copied());
        let keys = starts
            .zip(&self.created_ends)
            .map(|(a, &b)| &self.created[a..b]);
        let mut keys = keys.peekable();
        match self.created_ends.len() {
            0 => {}
            1 => {
                self.record_created
                    .raw_bind_parameter(3, &self.created[..])?;
                self.record_created.raw_execute()?;
            }
            n => {
                let first = *keys.peek().expect("n > 1 keys");
                let s = &mut self.record_created_run;
                s.raw_bind_parameter(3, n as i64)?;
                s.raw_bind_parameter(4, first)?;
                s.raw_bind_parameter(5, changes::keys_of_run(keys))?;
                s.raw_execute()?;
            }
        }
        self.created.clear();
        self.created_ends.clear();
        Ok(())
    }

    /// Ends the writer's part of the job: records the creations still
    /// pending and, as an update, the park of every user whose own row did
    /// not write over the placeholder, so the ledger never lags the users.
    /// A job that keeps its writes must call it.
    pub fn finish(&mut self) -> Result<(), StoreError> {
        self.record_creations()?;
        let n = changes::TRACKED.len();
        for (key, before) in std::mem::take(&mut self.parked) {
            let ctx = &self.ctx;
            let now = self
                .before
                .query_row(params![ctx.tenant, key], |r| changes::image(r, 0, n))
                .optional()?;
            if let Some(now) = now {
                changes::record_update(self.conn, &ctx.by(), &key, &before, &now)?;
            }
        }
        Ok(())
    }

    /// Records a role in the tenant's catalogue; true when it is new.
    pub fn add_role(&mut self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .add_role
            .execute(params![self.ctx.tenant, name, self.ctx.job])?
            == 1)
    }
}

fn bind_value(s: &mut Statement<'_>, idx: usize, text: &str, v: Bound) -> rusqlite::Result<()> {
    match v {
        Bound::Null => s.raw_bind_parameter(idx, rusqlite::types::Null),
        Bound::Int(i) => s.raw_bind_parameter(idx, i),
        Bound::Text(a, b) => s.raw_bind_parameter(idx, &text[a as usize..b as usize]),
    }
}

/// Who already holds an email, for the message of a refused row.
pub fn holder_of_email(
    db: &impl Db,
    tenant: &str,
    email: &str,
) -> Result<Option<String>, StoreError> {
    let conn = db.sql();
    let mut stmt = conn.prepare_cached("SELECT key FROM users WHERE tenant = ?1 AND email = ?2")?;
    let mut rows = stmt.query(params![tenant, email])?;
    Ok(match rows.next()? {
        Some(r) => Some(r.get(0)?),
        None => None,
    })
}

/// Users of the tenant whose key `named` does not know: the ones a sync
/// would deactivate (only enabled ones) or delete.
pub fn absent_users(
    db: &impl Db,
    tenant: &str,
    named: impl Fn(Hash) -> bool,
    only_enabled: bool,
) -> Result<Vec<i64>, StoreError> {
    let conn = db.sql();
    let mut stmt =
        conn.prepare_cached("SELECT id, key, enabled FROM users NOT INDEXED WHERE tenant = ?1")?;
    let mut rows = stmt.query([tenant])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let key = r.get_ref(1)?.as_str()?;
        if !named(hash96(key)) && (!only_enabled || r.get::<_, i64>(2)? != 0) {
            out.push(r.get(0)?);
        }
    }
    Ok(out)
}

/// Deactivates users by id. The row fingerprint is cleared so that a later
/// file naming them again re-enables them instead of looking unchanged.
pub fn deactivate(db: &impl Db, ids: &[i64], job: i64) -> Result<usize, StoreError> {
    let conn = db.sql();
    let mut who =
        conn.prepare_cached("SELECT tenant, key FROM users WHERE id = ?1 AND enabled != 0")?;
    let mut stmt = conn.prepare_cached(
        "UPDATE users SET enabled = 0, row_hash = NULL, updated_job = ?2, updated_at = ?3 WHERE id = ?1",
    )?;
    let now = super::now_text();
    let mut n = 0;
    for id in ids {
        let found = who
            .query_row([id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .optional()?;
        if let Some((tenant, key)) = found {
            stmt.execute(params![id, job, now])?;
            n += 1;
            let by = changes::By {
                tenant: &tenant,
                job,
                at: &now,
            };
            changes::record_deactivation(conn, &by, &key)?;
        }
    }
    Ok(n)
}

/// Removes users by id for `job`; the user_ids of those removed go to
/// `gone`.
pub fn delete_ids(
    db: &impl Db,
    ids: &[i64],
    job: i64,
    gone: &mut Vec<String>,
) -> Result<usize, StoreError> {
    let conn = db.sql();
    let mut who = conn.prepare_cached(&format!(
        "SELECT tenant, key, {} FROM users WHERE id = ?1",
        changes::DELETED_COLUMNS
    ))?;
    let mut stmt = conn.prepare_cached("DELETE FROM users WHERE id = ?1")?;
    let now = super::now_text();
    let mut n = 0;
    for id in ids {
        let removed = who
            .query_row([id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    changes::image(r, 2, changes::TRACKED.len() + 1)?,
                ))
            })
            .optional()?;
        if let Some((tenant, key, before)) = removed {
            stmt.execute([id])?;
            n += 1;
            let by = changes::By {
                tenant: &tenant,
                job,
                at: &now,
            };
            changes::record_deletion(conn, &by, &key, &before)?;
            if let Value::Text(uid) = &before[0] {
                gone.push(uid.clone());
            }
        }
    }
    Ok(n)
}

/// Every stored user's manager, as (user_id hash, reports_to hash) sorted:
/// how the import follows a chain of managers that leaves its file.
pub fn managers(db: &impl Db, tenant: &str) -> Result<Vec<(Hash, Hash)>, StoreError> {
    let conn = db.sql();
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, reports_to FROM users NOT INDEXED
         WHERE tenant = ?1 AND user_id IS NOT NULL AND reports_to IS NOT NULL",
    )?;
    let mut rows = stmt.query([tenant])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push((
            hash96(r.get_ref(0)?.as_str()?),
            hash96(r.get_ref(1)?.as_str()?),
        ));
    }
    out.sort_unstable();
    Ok(out)
}

/// The stored user_ids among `wanted` (by hash), for messages that name them.
pub fn user_ids_of(
    db: &impl Db,
    tenant: &str,
    wanted: &[Hash],
) -> Result<Vec<(Hash, String)>, StoreError> {
    let conn = db.sql();
    let mut stmt = conn.prepare_cached(
        "SELECT user_id FROM users NOT INDEXED WHERE tenant = ?1 AND user_id IS NOT NULL",
    )?;
    let mut rows = stmt.query([tenant])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let uid = r.get_ref(0)?.as_str()?;
        let h = hash96(uid);
        if wanted.contains(&h) {
            out.push((h, uid.to_string()));
        }
    }
    Ok(out)
}

/// A user whose manager was removed: their `reports_to` was cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostManager {
    pub key: String,
    pub manager: String,
}

/// Clears `reports_to` of the tenant's users who report to a user_id of
/// `gone` (users just deleted) and that no remaining user holds, so that no
/// user points at a manager who does not exist. A recorded change: the
/// job and time of the update move, and the row fingerprint is cleared so
/// that the next file naming them is applied, not skipped. Returns who lost
/// which manager, by key.
pub fn clear_managers(
    db: &impl Db,
    tenant: &str,
    gone: &[String],
    job: i64,
) -> Result<Vec<LostManager>, StoreError> {
    if gone.is_empty() {
        return Ok(Vec::new());
    }
    let mut gone: std::collections::HashSet<&str> = gone.iter().map(String::as_str).collect();
    let conn = db.sql();
    // A user_id another user still holds (the key is not the user_id) is
    // still a manager.
    let mut held = conn.prepare_cached(
        "SELECT user_id FROM users NOT INDEXED WHERE tenant = ?1 AND user_id IS NOT NULL",
    )?;
    let mut rows = held.query([tenant])?;
    while let Some(r) = rows.next()? {
        gone.remove(r.get_ref(0)?.as_str()?);
    }
    drop(rows);
    if gone.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT id, key, reports_to FROM users NOT INDEXED WHERE tenant = ?1 AND reports_to IS NOT NULL",
    )?;
    let mut lost = Vec::new();
    let mut rows = stmt.query([tenant])?;
    while let Some(r) = rows.next()? {
        let manager = r.get_ref(2)?.as_str()?;
        if gone.contains(manager) {
            lost.push((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                manager.to_string(),
            ));
        }
    }
    drop(rows);
    let mut clear = conn.prepare_cached(
        "UPDATE users SET reports_to = NULL, row_hash = NULL, updated_job = ?2, updated_at = ?3 WHERE id = ?1",
    )?;
    let now = super::now_text();
    let by = changes::By {
        tenant,
        job,
        at: &now,
    };
    for (id, key, manager) in &lost {
        clear.execute(params![id, job, now])?;
        changes::record_manager_cleared(conn, &by, key, manager)?;
    }
    let mut out: Vec<LostManager> = lost
        .into_iter()
        .map(|(_, key, manager)| LostManager { key, manager })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// The distinguished names stored for the tenant's users, with each one's
/// user_id: how a file's `Manager` DN finds a manager the file does not hold.
pub fn dns(db: &impl Db, tenant: &str) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = db.sql().prepare(
        "SELECT dn, user_id FROM users WHERE tenant = ?1 AND dn IS NOT NULL AND user_id IS NOT NULL",
    )?;
    let rows = stmt
        .query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The ids of the users of tenant `tenant` whose user_id is `user_id`
/// (both SQL parameters), as `SELECT id`: by key where the key is
/// the user_id (a tenant keyed by user_id), else by the index that holds
/// only the users whose key is something else (migration 012).
pub(super) fn with_user_id(tenant: &str, user_id: &str) -> String {
    format!(
        "SELECT id FROM users WHERE tenant = {tenant} AND key = {user_id} AND user_id = {user_id}
         UNION ALL
         SELECT id FROM users WHERE tenant = {tenant} AND user_id = {user_id}
           AND user_id IS NOT NULL AND user_id <> key"
    )
}

/// Records each user's distinguished name (`dn` → user_id, as a file
/// described them); a name another user held before is taken from them.
pub fn set_dns<'a>(
    db: &impl Db,
    tenant: &str,
    dns: impl Iterator<Item = (&'a String, &'a String)>,
) -> Result<(), StoreError> {
    let conn = db.sql();
    let mut free =
        conn.prepare("UPDATE users SET dn = NULL WHERE tenant = ?1 AND dn = ?2 AND user_id <> ?3")?;
    let mut set = conn.prepare(&format!(
        "UPDATE users SET dn = ?2 WHERE id IN ({})",
        with_user_id("?1", "?3")
    ))?;
    for (dn, user_id) in dns {
        free.execute(params![tenant, dn, user_id])?;
        set.execute(params![tenant, dn, user_id])?;
    }
    Ok(())
}

/// Whether the tenant has any user (one read of its key index).
pub fn any(db: &impl Db, tenant: &str) -> Result<bool, StoreError> {
    let conn = db.sql();
    Ok(conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM users WHERE tenant = ?1)")?
        .query_row([tenant], |r| r.get(0))?)
}

pub fn count(db: &impl Db, tenant: &str) -> Result<i64, StoreError> {
    let conn = db.sql();
    Ok(conn.query_row(
        "SELECT count(*) FROM users WHERE tenant = ?1",
        [tenant],
        |r| r.get(0),
    )?)
}

pub fn role_names(db: &impl Db, tenant: &str) -> Result<Vec<String>, StoreError> {
    let conn = db.sql();
    let mut stmt = conn.prepare_cached("SELECT name FROM roles WHERE tenant = ?1 ORDER BY name")?;
    let names = stmt
        .query_map([tenant], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(names)
}

// --- words helper (held-sync mail) ---

/// Who a user is, for a person to recognise: the held-sync mail's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub key: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
}

/// The users of `ids`, in key order, at most `limit` of them.
pub fn named(db: &impl Db, ids: &[i64], limit: usize) -> Result<Vec<Named>, StoreError> {
    let conn = db.sql();
    let mut stmt = conn.prepare_cached(
        "SELECT key, COALESCE(first_name, ''), COALESCE(last_name, ''), email FROM users WHERE id = ?1",
    )?;
    let mut out = Vec::with_capacity(ids.len().min(limit));
    for id in ids {
        let mut rows = stmt.query([id])?;
        if let Some(r) = rows.next()? {
            out.push(Named {
                key: r.get(0)?,
                first_name: r.get(1)?,
                last_name: r.get(2)?,
                email: r.get(3)?,
            });
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out.truncate(limit);
    Ok(out)
}
