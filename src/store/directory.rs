//! Reading a tenant's users back as they are stored: one at a time in key
//! order (export streams a million this way), or a page of them by keyset
//! (the HTTP API). Re-exported by [`super::users`]. This module must never
//! write.

use rusqlite::params;

use super::{Db, StoreError};

/// One stored user, for export and tests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    pub key: String,
    pub user_id: Option<String>,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub enabled: bool,
    pub roles: Vec<String>,
    pub reports_to: Option<String>,
    pub task_notification: String,
    pub notify_if_new_user: bool,
    pub mobile_number: Option<String>,
    pub country: Option<String>,
    pub state: Option<String>,
    pub last_active_date: Option<String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// Every user of a tenant, by key, calling `f` for each (streaming: an
/// export of a million users must not hold them all).
pub fn for_each_user(
    db: &impl Db,
    tenant: &str,
    f: impl FnMut(User) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    users_matching(db, tenant, &Select::All, i64::MAX, f)
}

/// Which users a paged reader wants, in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Select<'a> {
    All,
    /// Keys after this one: the next page of a keyset cursor.
    After(&'a str),
    Key(&'a str),
    /// The user with this email (any case).
    Email(&'a str),
}

/// At most `limit` users of a tenant that `select` picks, by key. Pages
/// seek on the (tenant, key) index: the millionth user costs what the first
/// does.
pub fn users_matching(
    db: &impl Db,
    tenant: &str,
    select: &Select<'_>,
    limit: i64,
    mut f: impl FnMut(User) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let conn = db.sql();
    let (filter, arg) = match select {
        Select::All => ("", None),
        Select::After(k) => ("AND key > ?2", Some(*k)),
        Select::Key(k) => ("AND key = ?2", Some(*k)),
        Select::Email(e) => ("AND email = ?2", Some(*e)),
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT key, user_id, email, first_name, last_name, enabled, roles, reports_to, task_notification,
                notify_if_new_user, mobile_number, country, state, last_active_date, attributes
         FROM users WHERE tenant = ?1 {filter} ORDER BY key LIMIT ?3"
    ))?;
    let mut rows = stmt.query(params![tenant, arg, limit])?;
    while let Some(r) = rows.next()? {
        let roles: String = r.get(6)?;
        let attributes: String = r.get(14)?;
        f(User {
            key: r.get(0)?,
            user_id: r.get(1)?,
            email: r.get(2)?,
            first_name: r.get(3)?,
            last_name: r.get(4)?,
            enabled: r.get::<_, i64>(5)? != 0,
            roles: roles_of(&roles)?,
            reports_to: r.get(7)?,
            task_notification: r.get(8)?,
            notify_if_new_user: r.get::<_, i64>(9)? != 0,
            mobile_number: r.get(10)?,
            country: r.get(11)?,
            state: r.get(12)?,
            last_active_date: r.get(13)?,
            attributes: serde_json::from_str(&attributes).map_err(|source| StoreError::Json {
                column: "attributes",
                source,
            })?,
        })?;
    }
    Ok(())
}

/// A user's roles as stored (a JSON array of names).
pub(super) fn roles_of(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Json {
        column: "roles",
        source,
    })
}

pub fn all_users(db: &impl Db, tenant: &str) -> Result<Vec<User>, StoreError> {
    let mut out = Vec::new();
    for_each_user(db, tenant, |u| {
        out.push(u);
        Ok(())
    })?;
    Ok(out)
}
